#!/usr/bin/env python3
"""Event-level figures of a fall model: held-out skeleton sequences played as continuous
streams through the element's schedule (`stgcnclassify`) and the `eventsink` rule logic,
counting falls detected and false alarms per hour of normal activity.

    python3 tools/stgcn/fall_events.py models/fall_stgcnpp.onnx --out models

Writes <out>/<name>_events.json and prints the table of the model card's section
"Event-level figures". `--split val` plays the validation subset of the training sources
instead of the held-out test split (the model's `recognizer.fall_split`).

The element's schedule (`stgcnclassify`, defaults; the same as tools/action_reference.py):
window T and min-frames from the model's metadata (`recognizer.window`,
`recognizer.min_frames`), stride the element's DEFAULT_STRIDE (read from
plugins/src/stgcnclassify/imp.rs). A track is classified on a frame when its window holds
>= min-frames frames and it was never classified or `stride` frames were added since; the
window is its last <= T frames ("window" normalisation, zero padding). The latest
classification's probabilities are carried on every frame of the track until the next one.

The rules (`eventsink`, core/src/events): a track matches a frame when the rule holds on the
carried probabilities; a run of `min-frames` consecutive matching frames fires once; the
episode ends on the first non-matching frame at least `cooldown-ms` after its last matching
frame (default 5000 ms). A track without a classification yet does not match. Rules reported,
with their min-frames fixed before any figure of this script was seen (2026-12-06):
- `balanced`: the model's own decision, `labels=fall label-match=contains` (the argmax;
  min-score 0.5), min-frames 3: what pipelines/file-to-events.pipeline ships. With stride 4,
  one classification carries over 4 frames, so 1..4 frames mean one window, 5..8 two
  consecutive windows, 9..12 three.
- `class=fall min-score=0.3`: min-frames 5, two consecutive windows (the card's advice: a
  lower min-score needs more frames to absorb single-window false alarms; validation
  precision 0.93 per window).
- `high-recall` (`class=fall min-score=0.10`, validation precision 0.85 per window):
  min-frames 9, three consecutive windows.
The same rules at min-frames 3, 5 and 9 are in the JSON (`grid`), for information.

Streams (only data the model never trained on for the test split):
- falls: Le2i (MD4FD) fall recordings, the overlapping 90-frame windows of one recording
  stitched back into one sequence (data.md4fd_recordings; 25 fps, Le2i's real rate); onset =
  data.fall_onset of the stitched sequence (the body's box turns wide: the person is down).
  A fall is detected when an event is confirmed within 2 s of the onset (either side);
  events earlier than that are false alarms of the fall recording.
- falls: UP-Fall subject 10 trials (the runs data.load_upfall keeps and data.fall_pools
  holds out, each run one track, at ~18 fps, the cameras' rate given in MANIFEST.md). The
  shared UP-Fall files keep frames 1 and 10..19 and then 100 onward, so the labelled onset
  (frame label 0 -> 1, frames 20..40) is never in a run: the runs start 1-5 s after it. The
  onset used is the first frame from which the person is seen down (data.on_floor, the
  definition of a UP-Fall fall window, in 4 of 5 frames and 60 % of the rest of the run);
  a trial whose runs never show the person down (they are already up, or sitting) is
  reported as "not down" and not counted. Detected: an event within 2 s of that frame.
- normal activity: Penn Action test clips and JHMDB split-1 test clips, each clip one track,
  played back to back at 30 fps (MANIFEST.md: JHMDB 30 fps, Penn Action ~30 fps, not stored),
  and the everyday (ADL) recordings of the held-out Le2i scene (25 fps). False alarms per hour
  = events / hours of those streams, with the 95 % Poisson upper bound.
"""
import argparse
import json
import os
import re
import sys
from collections import defaultdict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
from evaluate import Predictor, fall_classes  # noqa: E402

STGCN_IMP = os.path.join(data.REPO, "plugins", "src", "stgcnclassify", "imp.rs")
COOLDOWN_MS = 5000          # eventsink's default cooldown-ms
DETECT_S = 2.0              # an event within 2 s of the onset
FPS = {"le2i": 25.0, "urfd": 30.0, "upfall": 18.0, "penn": 30.0, "jhmdb": 30.0}
RULES = [  # name, eventsink rule, kind ("action": argmax label, "class": probability), score
    ("balanced", "labels=fall label-match=contains", "action", 0.5, 3),
    ("min-score 0.3", "class=fall min-score=0.3", "class", 0.3, 5),
    ("high recall", "class=fall min-score=0.1", "class", 0.1, 9),
]
GRID_FRAMES = (3, 5, 9)


def element_stride():
    text = open(STGCN_IMP).read()
    m = re.search(r"const DEFAULT_STRIDE: u32 = (\d+);", text)
    if not m:
        raise SystemExit(f"DEFAULT_STRIDE not found in {STGCN_IMP}")
    return int(m.group(1))


def schedule(n, T, min_frames, stride):
    """Frames (0-based, of a track of n frames) on which the element classifies it."""
    due, since = [], None
    for t in range(n):
        if since is not None:
            since += 1
        if t + 1 >= min_frames and (since is None or since >= stride):
            due.append(t)
            since = 0
    return due


# ---------------------------------------------------------------------------------------------
# Streams: {"name", "kind": "fall" | "normal", "source", "fps", "tracks": [(start, kp)],
#           "frames", "width", "height", "onset" (fall: frame index of the stream)}
# ---------------------------------------------------------------------------------------------

def stitch(windows):
    """One MD4FD recording's overlapping windows (in id order) -> one sequence."""
    seq = windows[0]["kp"]
    for w in windows[1:]:
        a, b = seq[-len(w["kp"]):], w["kp"]
        for s in range(1, len(a)):
            if np.allclose(a[s:, :, :2], b[:len(a) - s, :, :2], atol=1e-3):
                seq = np.concatenate([seq, b[len(a) - s:]])
                break
        else:
            raise SystemExit(f"{w['group']} does not overlap the previous window of its recording")
    return seq


def md4fd_streams(items):
    by_rec = defaultdict(list)
    for s in items:
        by_rec[(s["source"], s["recording"])].append(s)
    out = []
    for (src, _), ws in sorted(by_rec.items()):
        ws = sorted(ws, key=lambda s: s["group"])
        kp = stitch(ws)
        fall = any(w["label"] == 1 for w in ws)
        st = dict(name=f"{ws[0]['group']}..{ws[-1]['group'][-3:]}", kind="fall" if fall else "normal",
                  source=src, fps=FPS[src], tracks=[(0, kp)], frames=len(kp),
                  width=ws[0]["width"], height=ws[0]["height"])
        if fall:
            st["onset"] = int(data.fall_onset(kp))
            st["onset_kind"] = "down (data.fall_onset)"
        out.append(st)
    return out


def upfall_onsets():
    """Trial -> frame number (1-based) of its first fall-onward frame, from the labels."""
    d = data._npz("upfall_falls_mediapipe33/upfall_falls_mediapipe33_coco17.npz")
    o = d["offsets"]
    out = {}
    for i, vid in enumerate(d["video"]):
        lab = d["frame_label"][o[i]:o[i + 1]]
        out[str(vid)] = int(np.argmax(lab == 1)) + 1 if (lab == 1).any() else None
    return out


def down_onset(kp):
    """First frame from which the person is seen down (data.on_floor, the definition of a
    UP-Fall fall window) in most frames: 4 of the next 5 and 60 % of the rest; None if never."""
    down = data.on_floor(kp)
    for t in range(len(kp)):
        if down[t:t + 5].mean() >= 0.8 and down[t:].mean() >= 0.6:
            return t
    return None


def upfall_streams(items):
    onsets = upfall_onsets()
    by_trial = defaultdict(list)
    for s in items:
        by_trial[s["video"]].append(s)
    out = []
    for vid, runs in sorted(by_trial.items()):
        runs = sorted(runs, key=lambda s: s["frames"][0])
        first = runs[0]["frames"][0]
        # stream frame 0 = trial frame `first`; each run one track (the element restarts a
        # track's window when it is missing from a frame)
        down = [r["frames"][0] - first + t for r in runs for t in [down_onset(r["kp"])] if t is not None]
        st = dict(name=vid, kind="fall" if down else "not-down", source="upfall",
                  fps=FPS["upfall"], tracks=[(r["frames"][0] - first, r["kp"]) for r in runs],
                  frames=runs[-1]["frames"][1] - first + 1, width=640, height=480,
                  label_onset_frame=onsets[vid], first_frame=first,
                  first_frame_after_label_onset_s=round((first - onsets[vid]) / FPS["upfall"], 2))
        if down:
            st["onset"] = down[0]
            st["onset_kind"] = "first frame seen down (data.on_floor)"
        out.append(st)
    return out


def clip_streams(items, source):
    names = (data.load_penn if source == "penn" else data.load_jhmdb)()[1]
    return [dict(name=f"{source}:{s['group']}", kind="normal", source=source, fps=FPS[source],
                 tracks=[(0, s["kp"])], frames=len(s["kp"]), width=s["width"], height=s["height"],
                 action=names[s["action"]])
            for s in items if s["source"] == source]


def streams(split):
    pool = data.fall_pools()[split]
    md = [s for s in pool if s["source"] in ("le2i", "urfd")]
    return (md4fd_streams(md) + upfall_streams([s for s in pool if s["source"] == "upfall"])
            + clip_streams(pool, "penn") + clip_streams(pool, "jhmdb"))


# ---------------------------------------------------------------------------------------------
# Playing the streams
# ---------------------------------------------------------------------------------------------

def fall_probabilities(pred, all_streams, T, min_frames, stride):
    """Per stream and track: the carried fall probability per frame (NaN before the track's
    first classification), and the fall class's argmax per frame."""
    fall = fall_classes(pred.labels)
    windows, where = [], []
    for si, st in enumerate(all_streams):
        for ti, (_, kp) in enumerate(st["tracks"]):
            for t in schedule(len(kp), T, min_frames, stride):
                windows.append(dict(frames=kp[max(0, t + 1 - T):t + 1], width=st["width"],
                                    height=st["height"]))
                where.append((si, ti, t))
    scores = pred.scores(windows)
    p_fall = scores[:, fall].sum(1)
    is_argmax = fall[scores.argmax(1)]
    carried = {}
    for (si, ti, t), p, a in zip(where, p_fall, is_argmax):
        carried.setdefault((si, ti), []).append((t, p, a))
    out = {}
    for si, st in enumerate(all_streams):
        for ti, (_, kp) in enumerate(st["tracks"]):
            prob = np.full(len(kp), np.nan)
            arg = np.zeros(len(kp), bool)
            for t, p, a in carried.get((si, ti), []):
                prob[t:] = p
                arg[t:] = a
            out[(si, ti)] = (prob, arg)
    return out, len(windows)


def events(matching, fps, min_frames, cooldown_ms=COOLDOWN_MS):
    """core/src/events on one track: confirming frame indices of its events."""
    fired, state = [], None          # None | ("pending", frames) | ("active", last_match)
    cooldown = cooldown_ms / 1000.0 * fps
    for t, m in enumerate(matching):
        if m:
            if state is None:
                state = ("pending", 1)
            elif state[0] == "pending":
                state = ("pending", state[1] + 1)
            else:
                state = ("active", t)
            if state[0] == "pending" and state[1] >= min_frames:
                fired.append(t)
                state = ("active", t)
        elif state is not None:
            if state[0] == "pending" or t - state[1] >= cooldown:
                state = None
    return fired


def play(all_streams, probs, kind, score, min_frames):
    """Events per stream (stream frame indices) under one rule."""
    out = []
    for si, st in enumerate(all_streams):
        ev = []
        for ti, (start, _) in enumerate(st["tracks"]):
            prob, arg = probs[(si, ti)]
            ok = ~np.isnan(prob)
            match = ok & (np.nan_to_num(prob) >= score)
            if kind == "action":
                match &= arg
            ev += [start + t for t in events(match, st["fps"], min_frames)]
        out.append(sorted(ev))
    return out


def poisson_upper(k, conf=0.95):
    """Upper bound of a Poisson mean after k events (exact, by bisection on the CDF)."""
    from math import exp, factorial
    lo, hi = 0.0, 10.0 + 10 * k
    for _ in range(100):
        mid = (lo + hi) / 2
        cdf = sum(exp(-mid) * mid ** i / factorial(i) for i in range(k + 1))
        lo, hi = (mid, hi) if cdf > 1 - conf else (lo, mid)
    return hi


def summarise(all_streams, ev):
    falls, normal = defaultdict(lambda: dict(falls=0, detected=0, latency_s=[], missed=[],
                                             early_alarms=0, late=0, with_event=0)), \
        defaultdict(lambda: dict(streams=0, seconds=0.0, false_alarms=0, with_alarm=[]))
    not_down = {}
    for st, e in zip(all_streams, ev):
        src = st["source"]
        if st["kind"] == "fall":
            f = falls[src]
            f["falls"] += 1
            f["with_event"] += bool(e)
            win = DETECT_S * st["fps"]
            near = [t for t in e if abs(t - st["onset"]) <= win]
            f["early_alarms"] += sum(t < st["onset"] - win for t in e)
            if near:
                f["detected"] += 1
                f["latency_s"].append(round((near[0] - st["onset"]) / st["fps"], 2))
            else:
                f["missed"].append(st["name"])
                f["late"] += any(t > st["onset"] + win for t in e)
        elif st["kind"] == "not-down":
            nd = not_down.setdefault(src, dict(trials=0, with_event=[]))
            nd["trials"] += 1
            if e:
                nd["with_event"].append(st["name"])
        else:
            n = normal[src]
            n["streams"] += 1
            n["seconds"] += st["frames"] / st["fps"]
            n["false_alarms"] += len(e)
            if e:
                n["with_alarm"].append(st["name"] + (f" ({st['action']})" if "action" in st else ""))
    total_s = sum(n["seconds"] for n in normal.values())
    total_fa = sum(n["false_alarms"] for n in normal.values())
    for n in normal.values():
        n["seconds"] = round(n["seconds"], 1)
        n["per_hour"] = round(n["false_alarms"] / n["seconds"] * 3600, 2)
    return dict(falls=dict(falls), normal=dict(normal), not_down=not_down,
                normal_hours=round(total_s / 3600, 3), false_alarms=total_fa,
                false_alarms_per_hour=round(total_fa / total_s * 3600, 2),
                false_alarms_per_hour_95_upper=round(poisson_upper(total_fa) / total_s * 3600, 2))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="fall model (.onnx)")
    ap.add_argument("--split", default="test", choices=["test", "val"])
    ap.add_argument("--out", help="folder for <name>_events.json")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    import onnx
    meta = {p.key: p.value for p in onnx.load(a.model).metadata_props}
    T = int(meta["recognizer.window"])
    min_frames = int(meta.get("recognizer.min_frames", T))
    stride = element_stride()
    pred = Predictor(a.model, a.threads)
    data.set_fall_split(pred.fall_split)
    all_streams = streams(a.split)
    probs, n_windows = fall_probabilities(pred, all_streams, T, min_frames, stride)
    results, grid = [], []
    for name, rule, kind, score, frames in RULES:
        for mf in GRID_FRAMES:
            s = summarise(all_streams, play(all_streams, probs, kind, score, mf))
            row = dict(rule=name, eventsink=f"{rule} min-frames={mf}", min_score=score, min_frames=mf,
                       **s)
            grid.append(row)
            if mf == frames:
                results.append(row)
    fall_streams = [st for st in all_streams if st["kind"] == "fall"]
    doc = dict(
        model=os.path.basename(a.model), fall_split=pred.fall_split, split=a.split,
        command="python3 tools/stgcn/fall_events.py " + " ".join(sys.argv[1:]),
        schedule=dict(window=T, min_frames=min_frames, stride=stride, cooldown_ms=COOLDOWN_MS,
                      detect_within_s=DETECT_S, fps=FPS, windows_classified=n_windows),
        protocol=__doc__.split("The rules")[1].strip(),
        rules=results, grid=grid,
        fall_streams=[{k: v for k, v in st.items() if k != "tracks"} |
                      {"tracks": [[s, len(kp)] for s, kp in st["tracks"]],
                       "max_fall_probability": round(float(np.nanmax(
                           [np.nanmax(np.append(probs[(si, ti)][0], -1.0)) for ti in range(len(st["tracks"]))])), 3)}
                      for si, st in enumerate(all_streams) if st["kind"] != "normal"])
    print(f"{len(all_streams)} streams ({len(fall_streams)} with a fall), {n_windows} windows "
          f"classified; T {T}, min-frames {min_frames}, stride {stride}")
    for r in grid:
        fl = " ".join(f"{src} {f['detected']}/{f['falls']} (any event {f['with_event']})"
                      for src, f in sorted(r["falls"].items()))
        fa = " ".join(f"{src} {n['false_alarms']}" for src, n in sorted(r["normal"].items()))
        mark = "*" if r in results else " "
        print(f"{mark} {r['eventsink']:55s} falls {fl} | false alarms {fa}: "
              f"{r['false_alarms_per_hour']}/h (<= {r['false_alarms_per_hour_95_upper']}) "
              f"in {r['normal_hours']} h")
    if a.out:
        name = os.path.splitext(os.path.basename(a.model))[0]
        suffix = "" if a.split == "test" else f"_{a.split}"
        with open(os.path.join(a.out, f"{name}_events{suffix}.json"), "w") as fh:
            json.dump(doc, fh, indent=1, default=lambda o: o.item() if hasattr(o, "item") else str(o))
            fh.write("\n")
    return doc


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Choose a fall model (which runs to ensemble, test-time flip or not, decision threshold) on
the validation subset of the training sources, never on the test split.

    python3 tools/stgcn/select_fall.py out/stgcn/fall_h1.pt out/stgcn/fall_h2.pt --out out/stgcn/select.json

The runs must have been trained with `train.py --hold-out-val` (the validation windows are
then unseen). Every non-empty subset of the runs, with and without the flip, is scored on the
validation windows of L = T and L = 20 frames (the mean logits of its members, as
export.py builds the ensemble). For each candidate the threshold t on the fall probability
(grid 0.05 .. 0.95) maximising the mean of the two fall F1 scores is found; ties go to the t
nearest 0.5. With `--video-tracks` (video_tracks.py output: our pose model and tracker on
real clips) a threshold only counts when it also meets the real-video requirement of the fall
model: at least MIN_FALL_WINDOWS windows labelled fall on the tracks of a clip whose name
contains "falling", and none on any track of the other clips (the windows the element forms,
video_check.track_windows), also at t - VIDEO_MARGIN and t + VIDEO_MARGIN. The chosen candidate is the one with the highest mean, then the
fewest members. `export.py --fall-threshold t` bakes t into the graph (a bias on the fall logit), so
the element's usual argmax applies it.

With `--calibration-runs` (runs trained with `train.py --hold-out-source`, which never saw
URFD) the threshold is not chosen on the validation subset: those runs' ensemble is scored on
the validation subset plus every URFD window (a source they never saw, as Le2i is for the
test split), and the threshold t_u maximising the mean fall F1 there (ties nearest 0.5) is
the target. Each candidate then takes the threshold nearest t_u (ties: the lower) among those
that meet the real-video requirement, and candidates are ranked by their validation F1 at it.
Why: the validation windows come from the training sources, where a high threshold costs
little recall; on the unseen test source it cost a quarter of the falls.
"""
import argparse
import itertools
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import evaluate  # noqa: E402
from export import load_checkpoint  # noqa: E402
from preprocess import build_input  # noqa: E402
from video_check import track_windows  # noqa: E402

THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.05), 2)
MIN_FALL_WINDOWS = 3
VIDEO_MARGIN = 0.05


def fall_prob(logits):
    """Probability of the fall class (index 1) from mean logits [N, 2]."""
    return 1.0 / (1.0 + np.exp(-(logits[:, 1] - logits[:, 0])))


def f1_at(prob, y, t):
    """(fall F1, tp, fp, fn) of labelling fall where prob > t. Unlike evaluate.fall_binary the
    F1 is not rounded: candidates are ranked on the exact mean."""
    pred = prob > t
    tp, fp, fn = int((pred & y).sum()), int((pred & ~y).sum()), int((~pred & y).sum())
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    return (2 * prec * rec / (prec + rec) if prec + rec else 0.0), tp, fp, fn


def run_logits(runs, windows, T):
    """{(checkpoint path, flip): logits [N, 2]} of every run, with and without the flip."""
    x = torch.from_numpy(build_input(windows, T))
    out = {}
    for path, model, _ in runs:
        for flip in (False, True):
            model.flip_average = flip
            with torch.no_grad():
                out[(path, flip)] = model(x).numpy()
    return out


def threshold_key(mean_f1, t):
    """Ranking of thresholds: the higher mean fall F1, then the t nearest 0.5."""
    return round(float(mean_f1), 6), -abs(t - 0.5)


def load_runs(paths, held_out, why):
    """[(path, model, checkpoint)] of fall runs trained with train.py's `held_out` option;
    exits naming the run and `why` it is needed otherwise."""
    runs = []
    for path in paths:
        model, ck = load_checkpoint(path)
        if not ck["args"].get(held_out):
            raise SystemExit(f"{path}: {why}")
        split = data.checkpoint_fall_split(ck)
        if split != data.FALL_SPLIT:
            raise SystemExit(f"{path}: trained for fall split {split!r}, selecting for "
                             f"{data.FALL_SPLIT!r} (--fall-split)")
        if ck["labels"] != ["normal", "fall"]:
            raise SystemExit(f"{path}: labels {ck['labels']}, expected ['normal', 'fall']")
        runs.append((path, model, ck))
    return runs


def window_sets(runs, T, split, what):
    """{L: (fall labels [N] bool, run_logits)} of the `split` windows of L = T and L = 20."""
    sets = {}
    for L in (T, 20):
        wins = evaluate.test_windows("fall", T, L, split=split)
        y = np.array([w["label"] == 1 for w in wins])
        sets[L] = (y, run_logits(runs, wins, T))
        print(f"{what} L={L}: {len(wins)} windows, {int(y.sum())} fall", flush=True)
    return sets


def calibrate(paths, T):
    """{flip: {"threshold": t_u, ...}}: the threshold maximising the mean fall F1 (L = T and
    L = 20; ties nearest 0.5) of the ensemble of `paths` on the validation subset plus all of
    data.FALL_UNSEEN_SOURCE, which those runs never saw."""
    runs = load_runs(paths, "hold_out_source",
                     f"trained on {data.FALL_UNSEEN_SOURCE} (train.py without --hold-out-source): "
                     "it cannot calibrate for an unseen source")
    split = f"val_plus_{data.FALL_UNSEEN_SOURCE}"
    sets = window_sets(runs, T, split, f"calibration ({split})")
    out = {}
    for flip in (False, True):
        probs = {L: fall_prob(np.mean([lg[(p, flip)] for p in paths], axis=0))
                 for L, (_, lg) in sets.items()}
        by_t = {float(t): {L: f1_at(probs[L], sets[L][0], t)[0] for L in sets} for t in THRESHOLDS}
        t_u = max(by_t, key=lambda t: threshold_key(np.mean(list(by_t[t].values())), t))
        out[flip] = dict(threshold=t_u, runs=[os.path.basename(p) for p in paths], split=split,
                         f1={f"L{L}": round(v, 4) for L, v in by_t[t_u].items()},
                         f1_by_threshold={f"{t:.2f}": [round(v, 4) for v in f.values()]
                                          for t, f in by_t.items()})
        print(f"calibration flip={int(flip)}: t_u={t_u:.2f} F1 {out[flip]['f1']}", flush=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", nargs="+")
    ap.add_argument("--out", help="JSON with every candidate's figures and the choice")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--calibration-runs", nargs="*", default=[],
                    help="runs trained with --hold-out-source: the threshold is calibrated on "
                    "their ensemble's scores on a source they never saw (see above)")
    ap.add_argument("--video-tracks", nargs="*", default=[],
                    help="video_tracks.py JSON files: thresholds must meet the real-video requirement")
    ap.add_argument("--fall-split", default=data.FALL_SPLIT_DEFAULT, choices=sorted(data.FALL_SPLITS),
                    help="the runs' train.py --fall-split")
    a = ap.parse_args()
    data.set_fall_split(a.fall_split)
    torch.set_num_threads(a.threads)
    runs = load_runs(a.checkpoint, "hold_out_val",
                     "trained on the validation subset (train.py without --hold-out-val): "
                     "its validation figures would be meaningless")
    T = runs[0][2]["T"]
    target = calibrate(a.calibration_runs, T) if a.calibration_runs else None
    sets = window_sets(runs, T, "val", "validation")
    videos = {}                        # name -> (is the falling clip, {run/flip: logits})
    for vpath in a.video_tracks:
        with open(vpath) as fh:
            doc = json.load(fh)
        wins = [dict(frames=w, width=doc["width"], height=doc["height"])
                for track in doc["tracks"].values()
                for _, w in track_windows(track, T, runs[0][2]["min_frames"], 1)]
        if not wins:
            continue
        name = os.path.basename(vpath)
        videos[name] = ("falling" in name, run_logits(runs, wins, T))
        print(f"video {name}: {len(wins)} windows", flush=True)
    candidates = []
    for k in range(1, len(runs) + 1):
        for members in itertools.combinations([r[0] for r in runs], k):
            for flip in (False, True):
                def prob(lg):                 # the candidate's fall probability, mean logits
                    return fall_prob(np.mean([lg[(p, flip)] for p in members], axis=0))
                probs = {L: prob(lg) for L, (_, lg) in sets.items()}
                vprobs = {n: (is_fall, prob(lg)) for n, (is_fall, lg) in videos.items()}

                def video_ok(t):
                    return all(int((pr > t).sum()) >= MIN_FALL_WINDOWS if is_fall
                               else not (pr > t).any() for is_fall, pr in vprobs.values())
                # with a margin: the neighbouring thresholds must meet it as well, so that
                # a small difference in scores (another build, another frame rate) keeps it
                ok_thresholds = [float(t) for t in THRESHOLDS
                                 if video_ok(t) and video_ok(t - VIDEO_MARGIN) and video_ok(t + VIDEO_MARGIN)]
                if target is not None and ok_thresholds:
                    t_u = target[flip]["threshold"]
                    allowed = [min(ok_thresholds, key=lambda t: (abs(t - t_u), t))]
                else:
                    allowed = ok_thresholds
                best = None
                for t in THRESHOLDS:
                    if float(t) not in allowed:
                        continue
                    f = {L: f1_at(probs[L], sets[L][0], t) for L in sets}
                    score = float(np.mean([v[0] for v in f.values()]))
                    key = threshold_key(score, t)
                    if best is None or key > best[0]:
                        best = (key, t, f)
                f05 = {L: f1_at(probs[L], sets[L][0], 0.5)[0] for L in sets}
                if best is None:
                    candidates.append(dict(members=[os.path.basename(p) for p in members],
                                           flip=flip, threshold=None, mean_f1=0.0, f1={},
                                           f1_at_05={f"L{L}": round(v, 4) for L, v in f05.items()},
                                           video_ok_thresholds=[]))
                    continue
                (score, _), t, f = best
                candidates.append(dict(
                    members=[os.path.basename(p) for p in members], flip=flip,
                    threshold=float(t), mean_f1=round(score, 4),
                    f1={f"L{L}": round(v[0], 4) for L, v in f.items()},
                    counts={f"L{L}": dict(tp=v[1], fp=v[2], fn=v[3]) for L, v in f.items()},
                    f1_at_05={f"L{L}": round(v, 4) for L, v in f05.items()},
                    video_ok_thresholds=ok_thresholds if videos else None,
                    video_max_fall_prob={n: round(float(pr.max()), 3) for n, (_, pr) in vprobs.items()}))
    candidates.sort(key=lambda c: (-c["mean_f1"], len(c["members"]), not c["flip"]))
    for c in candidates:
        if c["threshold"] is None:
            print(f"{'+'.join(c['members']):40s} flip={int(c['flip'])} no threshold meets the "
                  f"real-video requirement (at 0.5: {c['f1_at_05']})")
            continue
        ok = c["video_ok_thresholds"]
        print(f"{'+'.join(c['members']):40s} flip={int(c['flip'])} t={c['threshold']:.2f} "
              f"F1 {c['f1']} mean {c['mean_f1']} (at 0.5: {c['f1_at_05']})"
              + (f" video ok for t in [{min(ok)}, {max(ok)}]" if ok else ""))
    choice = candidates[0]
    if choice["threshold"] is None:
        raise SystemExit("no candidate meets the real-video requirement at any threshold")
    print("chosen:", json.dumps(choice))
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(dict(command="python3 tools/stgcn/select_fall.py " + " ".join(sys.argv[1:]),
                           calibration=target, chosen=choice, candidates=candidates), fh, indent=1)
            fh.write("\n")


if __name__ == "__main__":
    main()

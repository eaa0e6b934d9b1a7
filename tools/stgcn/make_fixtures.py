#!/usr/bin/env python3
"""Fixtures for the Rust `stgcnclassify` element: windows in source pixels and the softmax
scores that onnxruntime gives for them with the contract preprocessing (preprocess.py).

    python3 tools/stgcn/make_fixtures.py fall   # -> tests/fixtures/stgcn/fall_stgcnpp_windows.json
    python3 tools/stgcn/make_fixtures.py penn   # -> tests/fixtures/stgcn/penn_action_stgcnpp_windows.json

Windows come from the task's held-out test split (evaluate.test_items) at several lengths
L <= T (20, 33, T, ...), in the set's pixel space (tools/stgcn/data.py says which); the fall
fixture adds two windows of the NTU falling video as tracked by the Python reference chain
(tools/stgcn/video_tracks.py, 1920x1080, detector scores) when out/stgcn/video_tracks has it,
and both add synthetic edge cases (scores at the 0.01 threshold, no valid joint, one point).
Keypoints are rounded to 3 decimals BEFORE the expected scores are computed, so the Rust side
reads exactly the numbers that produced them.

{"model": "models/<name>.onnx", "T": T, "normalization": "window", "score_threshold": 0.01,
 "labels": [...], "windows": [{"id", "width", "height", "frames": [[[x, y, s] x17] x L]}],
 "expected": [[K softmax scores] per window]}
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evaluate  # noqa: E402
import tasks  # noqa: E402
from preprocess import SCORE_THRESHOLD  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def rounded(frames):
    return np.round(np.asarray(frames, np.float64), 3)


def pick_fall(T):
    rng = np.random.default_rng(4)
    items = evaluate.test_items("fall")
    out = []
    by_src = {}
    for s in items:
        by_src.setdefault(s["source"], []).append(s)
    plan = [("le2i", 1, [T, 20, 33]), ("le2i", 0, [T, 20, 41]), ("upfall", 1, [T, 20, 27]),
            ("penn", 0, [T, 20, 33]), ("jhmdb", 0, [T, 20])]
    for src, lab, lengths in plan:
        pool = [s for s in by_src[src] if (src in ("penn", "jhmdb") or s["label"] == lab)]
        if src == "upfall":
            pool = [s for s in pool if (s["flabel"] == 1).all() and len(s["kp"]) >= T]
        for L in lengths:
            s = pool[rng.integers(len(pool))]
            f = s["kp"][-L:] if src != "penn" else s["kp"][:L]
            out.append(dict(id=f"{src}:{s.get('video', s['group'])}:L{len(f)}", width=s["width"],
                            height=s["height"], frames=f))
    video = os.path.join(REPO, "out", "stgcn", "video_tracks",
                         "ntu_S002C002P003R002A043_rgb_falling.json")
    if os.path.exists(video):
        with open(video) as fh:
            doc = json.load(fh)
        tr = np.array([kp for _, kp in doc["tracks"]["1"]], np.float64)
        for end, L in ((45, 24), (80, T)):
            out.append(dict(id=f"ntu_falling_video:track1:frames{end - L}-{end - 1}",
                            width=doc["width"], height=doc["height"], frames=tr[end - L:end]))
    return out


def pick_penn(T):
    rng = np.random.default_rng(5)
    items = evaluate.test_items("penn")
    out = []
    classes = sorted({s["label"] for s in items})
    lengths = [T, 20, 33, 57]
    for n, c in enumerate(classes):
        pool = [s for s in items if s["label"] == c]
        s = pool[rng.integers(len(pool))]
        L = min(lengths[n % len(lengths)], len(s["kp"]))
        out.append(dict(id=f"penn:{s['group']}:L{L}", width=s["width"], height=s["height"],
                        frames=s["kp"][:L]))
    long = [s for s in items if len(s["kp"]) >= T]
    s = long[rng.integers(len(long))]
    out.append(dict(id=f"penn:{s['group']}:L{T}", width=s["width"], height=s["height"],
                    frames=s["kp"][:T]))
    return out


def edge_cases(base, T):
    """Synthetic cases around the contract's corners, derived from one real window."""
    f = rounded(base["frames"]).copy()
    out = []
    g = f.copy()
    g[:, 9, 2] = SCORE_THRESHOLD            # exactly at the threshold: invalid
    g[:, 10, 2] = 0.011                     # just above: valid
    g[::3, 0, 2] = 0.0
    out.append(dict(id="edge:score_threshold", width=base["width"], height=base["height"], frames=g))
    z = np.zeros((25, 17, 3))
    z[:, :, :2] = 100.0                      # coordinates but every score 0: all-zero input
    out.append(dict(id="edge:no_valid_joint", width=640, height=480, frames=z))
    p = np.zeros((22, 17, 3))
    p[:, 0] = [320.5, 240.25, 0.9]          # a single valid point: extent 0 -> s = 1
    out.append(dict(id="edge:single_point", width=640, height=480, frames=p))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task", choices=sorted(tasks.TASKS))
    ap.add_argument("--model", help="default models/<name>.onnx")
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "fixtures", "stgcn"))
    a = ap.parse_args()
    cfg = tasks.task_config(a.task)
    model = a.model or os.path.join(REPO, "models", cfg["name"] + ".onnx")
    pred = evaluate.Predictor(model, threads=1)
    T = pred.T
    wins = pick_fall(T) if a.task == "fall" else pick_penn(T)
    wins += edge_cases(wins[0], T)
    for w in wins:
        w["frames"] = rounded(w["frames"])
    scores = pred.scores(wins)
    doc = dict(model=os.path.relpath(model, REPO), T=T, normalization="window",
               score_threshold=SCORE_THRESHOLD, labels=pred.labels,
               tool="tools/stgcn/make_fixtures.py (onnxruntime CPU, preprocess.build_input)",
               windows=[dict(id=w["id"], width=int(w["width"]), height=int(w["height"]),
                             frames=w["frames"].tolist()) for w in wins],
               expected=[[float(f"{v:.9g}") for v in s] for s in scores])
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, f"{cfg['name']}_windows.json")
    with open(path, "w") as fh:
        fh.write("{\n")
        keys = list(doc)
        for n, k in enumerate(keys):
            sep = "," if n + 1 < len(keys) else ""
            if k in ("windows", "expected"):
                fh.write(f'  "{k}": [\n')
                for m, v in enumerate(doc[k]):
                    fh.write("    " + json.dumps(v, separators=(",", ":")) + ("," if m + 1 < len(doc[k]) else "") + "\n")
                fh.write(f"  ]{sep}\n")
            else:
                fh.write(f'  "{k}": {json.dumps(doc[k])}{sep}\n')
        fh.write("}\n")
    print(f"{path}: {len(wins)} windows, lengths {[len(w['frames']) for w in wins]}, "
          f"{os.path.getsize(path) / 1024:.0f} KiB")
    for w, s in zip(wins, scores):
        print(f"  {w['id']:50s} {pred.labels[int(np.argmax(s))]:16s} {float(np.max(s)):.3f}")


if __name__ == "__main__":
    main()

"""Python reference of the `stgcnclassify` element: the same per-track windows, schedule,
persons-per-sample and normalisation as the element, with onnxruntime, on a sequence of tracked
frames. Its output is a test fixture the element is compared against (max abs score difference
<= 1e-4).

Usage:
  python3 tools/action_reference.py FRAMES.jsonl MODEL.onnx OUT.json \
      [--window T] [--stride S] [--min-frames N] [--persons M] [--normalization frame|window]

FRAMES.jsonl: the frame log of `eventsink frames-location` after `bytetrack` (keypoints are
rounded to 3 decimals first; the fixture carries the rounded input). The element's schedule:
a track is due on a frame when its window holds >= min-frames frames and it was never
classified or `stride` frames were added since its last classification; a track absent from a
frame loses its window. M = 2 adds the nearest other person (box centres) of each frame.
"""
import argparse
import json
import os
import sys

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "stgcn"))
from preprocess import normalize_window  # noqa: E402  (the contract, shared with training)


def centre(p):
    b = p["bbox"]
    return ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0)


def nearest_other(persons, i):
    cx, cy = centre(persons[i])
    best, best_d = None, None
    for j, q in enumerate(persons):
        if j == i:
            continue
        qx, qy = centre(q)
        d = float(np.hypot(qx - cx, qy - cy))
        if best_d is None or d < best_d:
            best, best_d = q, d
    return best


def sample(window, T, M, mode):
    """window: list of (pose, other_pose or None, w, h), oldest first -> [M, T, 17, 3]."""
    w, h = window[-1][2], window[-1][3]
    own = normalize_window([f[0] for f in window], w, h, T=T, mode=mode)
    out = np.zeros((M, T, 17, 3), dtype=np.float32)
    out[0] = own
    if M == 2:
        if mode != "frame":
            raise SystemExit("M = 2 is implemented for frame normalisation only")
        # Frames without another person stay zero in slot 1.
        others = [f[1] if f[1] is not None else np.zeros((17, 3)) for f in window]
        out[1] = normalize_window(others, w, h, T=T, mode=mode)
        for t, f in enumerate(window[-T:]):
            if f[1] is None:
                out[1, t] = 0.0
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("frames")
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--window", type=int, default=100)
    ap.add_argument("--stride", type=int, default=4)
    ap.add_argument("--min-frames", type=int, default=20)
    ap.add_argument("--persons", type=int, default=2)
    ap.add_argument("--normalization", default="frame")
    ap.add_argument("--model-name", default=None, help="model path recorded in the fixture")
    a = ap.parse_args()

    records = [json.loads(line) for line in open(a.frames)]
    frames = []
    for r in records:
        persons = [
            {"track_id": p["track_id"], "bbox": [round(v, 3) for v in p["bbox"]],
             "keypoints": [[round(v, 3) for v in k] for k in p["keypoints"]]}
            for p in r["persons"] if p.get("track_id") is not None
        ]
        frames.append({"width": r["width"], "height": r["height"], "persons": persons})

    session = ort.InferenceSession(a.model, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    windows, since = {}, {}
    expected = []
    for f_index, frame in enumerate(frames):
        persons = frame["persons"]
        present = {p["track_id"] for p in persons}
        for tid in list(windows):
            if tid not in present:
                del windows[tid], since[tid]
        due = []
        for i, p in enumerate(persons):
            tid = p["track_id"]
            other = nearest_other(persons, i) if a.persons == 2 else None
            entry = (np.array(p["keypoints"]), None if other is None else np.array(other["keypoints"]),
                     frame["width"], frame["height"])
            win = windows.setdefault(tid, [])
            win.append(entry)
            if len(win) > a.window:
                win.pop(0)
            if tid in since:
                since[tid] += 1
            if len(win) >= a.min_frames and (tid not in since or since[tid] >= a.stride):
                due.append(tid)
        if not due:
            continue
        batch = np.stack([sample(windows[t], a.window, a.persons, a.normalization) for t in due])
        logits = session.run(None, {name: batch})[0].astype(np.float64)
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        for t, row in zip(due, probs):
            since[t] = 0
            expected.append({"frame": f_index, "track_id": t, "window": len(windows[t]),
                             "scores": [float(v) for v in row]})

    out = {"model": a.model_name or a.model, "window": a.window, "stride": a.stride,
           "min_frames": a.min_frames, "persons": a.persons, "normalization": a.normalization,
           "frames": frames, "expected": expected}
    with open(a.out, "w") as fh:
        json.dump(out, fh, separators=(",", ":"))
    print(f"{len(frames)} frames, {len(expected)} classifications -> {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()

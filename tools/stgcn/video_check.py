#!/usr/bin/env python3
"""Classify the tracks of real videos (from video_tracks.py) the way `stgcnclassify` does:
per track a sliding window of its last T frames (reset when the track misses a frame),
classified every `stride` frames once it holds `min_frames`, contract preprocessing, argmax of
the softmax. Prints per track how many classifications were a fall class and the highest
fall score.

    python3 tools/stgcn/video_check.py models/fall_stgcnpp.onnx out/stgcn/video_tracks/*.json

Exit status 0; the verdict is in the output (`FALL` marks tracks labelled with a fall class at
least once).
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from evaluate import Predictor  # noqa: E402


def track_windows(track, T, min_frames, stride):
    """track: [[frame, kp17x3], ...] -> [(frame, window [L,17,3])] as the element would form."""
    out, buf, last, since = [], [], None, 0
    for frame, kp in track:
        if last is not None and frame != last + 1:
            buf, since = [], 0                                  # track lost: reset
        buf.append(kp)
        buf = buf[-T:]
        last = frame
        since += 1
        if len(buf) >= min_frames and (since - min_frames) % stride == 0:
            out.append((frame, np.asarray(buf, np.float64)))
    return out


def check_video(pred, doc, min_frames, stride):
    fall = np.array(["fall" in n for n in pred.labels])
    res = {}
    for tid, track in sorted(doc["tracks"].items(), key=lambda kv: int(kv[0])):
        wins = track_windows(track, pred.T, min_frames, stride)
        if not wins:
            res[tid] = dict(frames=len(track), classified=0)
            continue
        sc = pred.scores([dict(frames=w, width=doc["width"], height=doc["height"]) for _, w in wins])
        top = sc.argmax(1)
        fall_sc = sc[:, fall].sum(1)
        res[tid] = dict(frames=len(track), classified=len(wins),
                        fall_labels=int(fall[top].sum()),
                        first_fall_frame=next((int(f) for (f, _), t in zip(wins, top) if fall[t]), None),
                        max_fall_score=round(float(fall_sc.max()), 3),
                        timeline="".join("F" if fall[t] else "." for t in top))
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("tracks", nargs="+")
    ap.add_argument("--min-frames", type=int, help="default: the model's recognizer.min_frames")
    ap.add_argument("--stride", type=int, default=1)
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()
    pred = Predictor(a.model)
    if a.min_frames is None:
        if a.model.endswith(".onnx"):
            import onnx
            meta = {p.key: p.value for p in onnx.load(a.model).metadata_props}
            a.min_frames = int(meta.get("recognizer.min_frames", pred.T))
        else:
            import torch
            a.min_frames = torch.load(a.model, weights_only=False)["min_frames"]
    allres = {}
    for path in a.tracks:
        with open(path) as fh:
            doc = json.load(fh)
        res = check_video(pred, doc, a.min_frames, a.stride)
        allres[os.path.basename(path)] = res
        print(f"{os.path.basename(path)} ({doc['width']}x{doc['height']}, {doc['frames']} frames)")
        for tid, r in res.items():
            flag = "FALL" if r.get("fall_labels") else "    "
            print(f"  {flag} track {tid}: {r.get('classified', 0)} windows, fall labels "
                  f"{r.get('fall_labels', 0)}, max fall score {r.get('max_fall_score', '-')}, "
                  f"first fall at frame {r.get('first_fall_frame')}")
            if r.get("timeline"):
                print(f"       {r['timeline']}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(dict(model=a.model, min_frames=a.min_frames, stride=a.stride, videos=allres), fh, indent=1)


if __name__ == "__main__":
    main()

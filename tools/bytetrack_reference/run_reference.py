#!/usr/bin/env python3
"""Run the ByteTrack reference (official code path, bytetrack_ref/) on detection sequences.

Input JSON (one sequence per file):
    {"name": "...", "frame_rate": 30,
     "config": {"track_thresh": 0.5, "track_buffer": 30, "match_thresh": 0.8, "mot20": false},
     "frames": [[[x1, y1, x2, y2, score], ...], null, ...]}
A frame that is `null` is a frame on which no detector ran: the tracker's predict_only()
extension is called (see README.md, R12). Missing config keys take the defaults above.

Output JSON (a fixture for core/tests/bytetrack_reference.rs): the input (detections rounded
to 4 decimals *before* the reference runs, so the Rust side reads the very same numbers) plus
    "expected": per frame, the tracker's output list in the tracker's order:
        [{"id": 1, "tlbr": [x1, y1, x2, y2], "score": 0.91, "det": 3 | null}, ...]
      where "det" is the row (in this frame's input list) of the detection the track was
      updated with on this frame, null if it was not updated on this frame;
    "expected_lost": per frame, the ids in the tracker's lost list, in its order;
    "reference": provenance (tool, versions).

Usage:
    run_reference.py INPUT.json [-o OUTPUT.json]   (default: overwrite INPUT.json)
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bytetrack_ref import BYTETracker  # noqa: E402

DEFAULT_CONFIG = {"track_thresh": 0.5, "track_buffer": 30, "match_thresh": 0.8, "mot20": False}
INPUT_DECIMALS = 4
OUTPUT_DECIMALS = 6


def round_frames(frames):
    out = []
    for f in frames:
        if f is None:
            out.append(None)
        else:
            out.append([[round(float(v), INPUT_DECIMALS) for v in det] for det in f])
    return out


def make_tracker(seq):
    cfg = dict(DEFAULT_CONFIG)
    cfg.update(seq.get("config", {}))
    return BYTETracker(
        track_thresh=cfg["track_thresh"],
        track_buffer=cfg["track_buffer"],
        match_thresh=cfg["match_thresh"],
        mot20=cfg["mot20"],
        frame_rate=seq.get("frame_rate", 30),
    ), cfg


def run_sequence(seq):
    """Returns a new dict: the sequence with rounded detections, expected outputs, provenance."""
    frames = round_frames(seq["frames"])
    tracker, cfg = make_tracker(seq)
    expected, expected_lost = [], []
    for f in frames:
        if f is None:
            tracks = tracker.predict_only()
        else:
            tracks = tracker.update(np.asarray(f, dtype=np.float64).reshape(-1, 5))
        row = []
        for t in tracks:
            updated = t.frame_id == tracker.frame_id and f is not None
            row.append({
                "id": int(t.track_id),
                "tlbr": [round(float(v), OUTPUT_DECIMALS) for v in t.tlbr],
                "score": round(float(t.score), OUTPUT_DECIMALS),
                "det": int(t.det_index) if updated else None,
            })
        expected.append(row)
        expected_lost.append([int(t.track_id) for t in tracker.lost_stracks])
    import lap
    import scipy
    out = {k: v for k, v in seq.items() if k not in ("frames", "expected", "expected_lost", "reference")}
    out["config"] = cfg
    out["frame_rate"] = seq.get("frame_rate", 30)
    out["frames"] = frames
    out["expected"] = expected
    out["expected_lost"] = expected_lost
    out["reference"] = {
        "tool": "tools/bytetrack_reference/run_reference.py",
        "code": "official ByteTrack yolox/tracker code path (patched bytetracker 0.3.2, see README)",
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "lap": getattr(lap, "__version__", "?"),
    }
    return out


def write_json(obj, path):
    # Compact but line-broken per frame, so diffs stay readable.
    with open(path, "w") as fh:
        fh.write("{\n")
        keys = list(obj.keys())
        for n, k in enumerate(keys):
            v = obj[k]
            sep = "," if n + 1 < len(keys) else ""
            if k in ("frames", "expected", "expected_lost"):
                fh.write(f'  "{k}": [\n')
                for m, f in enumerate(v):
                    fsep = "," if m + 1 < len(v) else ""
                    fh.write("    " + json.dumps(f, separators=(",", ":")) + fsep + "\n")
                fh.write(f"  ]{sep}\n")
            else:
                fh.write(f'  "{k}": ' + json.dumps(v) + sep + "\n")
        fh.write("}\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input")
    ap.add_argument("-o", "--output")
    args = ap.parse_args()
    with open(args.input) as fh:
        seq = json.load(fh)
    out = run_sequence(seq)
    write_json(out, args.output or args.input)
    n = sum(len(r) for r in out["expected"])
    print(f"{out.get('name')}: {len(out['frames'])} frames, {n} track outputs, "
          f"{len({t['id'] for r in out['expected'] for t in r})} ids -> {args.output or args.input}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Time the ByteTrack reference (bytetrack_ref/, the official code path) on detection sequences.

Run by `benches/bytetrack.rs`, which writes the sequences and times the Rust tracker on the very
same numbers; usable on its own too:

    bench_reference.py FILE [--repeats N] [--warmup-frames N]

FILE is either one sequence in the run_reference.py input format
    {"name", "frame_rate", "config"?, "frames": [[[x1, y1, x2, y2, score], ...] | null, ...]}
or a batch {"repeats": N, "warmup_frames": N, "sequences": [sequence, ...]}.

Per sequence: the frames are turned into numpy arrays first (not timed); a pass with a fresh
tracker over the first `warmup_frames` frames warms up (not timed); then `repeats` passes, each
with a fresh tracker, time each `tracker.update(...)` call (`predict_only()` for null frames)
with time.perf_counter_ns (the bookkeeping between calls is not timed). Prints one JSON object
on stdout:

    {"python": ..., "numpy": ..., "scipy": ..., "lap": ...,
     "results": [{"name", "frames", "detections", "repeats", "runs_us_per_frame": [...],
                  "best_us_per_frame", "median_us_per_frame", "outputs", "ids"}, ...]}

`outputs` (track outputs summed over the sequence) and `ids` (the highest id output) let the
caller check that both trackers followed the same path. Exit status 3 (with a message on
stderr) when numpy, scipy or lap (pip package lapx) cannot be imported.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

try:
    import numpy as np
    import scipy
    import lap
except ImportError as e:  # pragma: no cover - reported to the caller
    sys.stderr.write(
        f"bench_reference.py: {e}; install the reference's dependencies with\n"
        f"    python3 -m pip install -r tools/bytetrack_reference/requirements.txt   (numpy, scipy, lapx)\n"
    )
    sys.exit(3)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bytetrack_ref import BYTETracker  # noqa: E402
from run_reference import DEFAULT_CONFIG  # noqa: E402


def make_tracker(seq):
    cfg = dict(DEFAULT_CONFIG)
    cfg.update(seq.get("config", {}))
    return BYTETracker(
        track_thresh=cfg["track_thresh"],
        track_buffer=cfg["track_buffer"],
        match_thresh=cfg["match_thresh"],
        mot20=cfg["mot20"],
        frame_rate=seq.get("frame_rate", 30),
    )


def one_pass(seq, arrays):
    """A fresh tracker over the whole sequence. Returns (ns spent in update calls, outputs, ids)."""
    tracker = make_tracker(seq)
    outputs = 0
    max_id = 0
    update, predict_only = tracker.update, tracker.predict_only
    clock = time.perf_counter_ns
    elapsed = 0
    for a in arrays:
        start = clock()
        tracks = predict_only() if a is None else update(a)
        elapsed += clock() - start
        outputs += len(tracks)
        for t in tracks:
            if t.track_id > max_id:
                max_id = t.track_id
    return elapsed, outputs, int(max_id)


def bench(seq, repeats, warmup_frames):
    frames = seq["frames"]
    arrays = [None if f is None else np.asarray(f, dtype=np.float64).reshape(-1, 5) for f in frames]
    dets = [len(f) for f in frames if f is not None]
    one_pass(seq, arrays[:warmup_frames])  # warm-up, not timed
    runs, outputs, ids = [], None, None
    for _ in range(repeats):
        ns, outputs, ids = one_pass(seq, arrays)
        runs.append(ns / 1e3 / len(frames))
    return {
        "name": seq.get("name"),
        "frames": len(frames),
        "detections": (sum(dets) / len(dets)) if dets else 0.0,
        "repeats": repeats,
        "runs_us_per_frame": runs,
        "best_us_per_frame": min(runs),
        "median_us_per_frame": statistics.median(runs),
        "outputs": outputs,
        "ids": ids,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    ap.add_argument("--repeats", type=int, help="timed passes per sequence (default: the file's, else 3)")
    ap.add_argument("--warmup-frames", type=int,
                    help="frames of the untimed warm-up pass (default: the file's, else 50)")
    args = ap.parse_args()
    with open(args.file) as fh:
        doc = json.load(fh)
    sequences = doc["sequences"] if "sequences" in doc else [doc]
    repeats = args.repeats or doc.get("repeats", 3)
    warmup = args.warmup_frames if args.warmup_frames is not None else doc.get("warmup_frames", 50)
    results = [bench(s, repeats, warmup) for s in sequences]
    print(json.dumps({
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "lap": getattr(lap, "__version__", "?"),
        "results": results,
    }))


if __name__ == "__main__":
    main()

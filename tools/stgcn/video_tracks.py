#!/usr/bin/env python3
"""Per-track keypoint sequences from a video, with the project's Python reference chain.

Decode (OpenCV) -> pose (tools/pose_reference.py: RTMO-contract YOLO11n-pose, onnxruntime CPU)
-> tracking (tools/bytetrack_reference: the official ByteTrack code path) -> for every track the
keypoints of the detection it was updated with, per frame. This is what `rtmopose ! bytetrack`
hands to `stgcnclassify`, so the trained classifiers can be checked on real video
(`tools/stgcn/video_check.py`) before the Rust element exists.

Output JSON: {"video", "width", "height", "fps", "frames",
              "tracks": {"<id>": [[frame, [[x, y, s] x17]], ...]}}

    python3 tools/stgcn/video_tracks.py media/video/ntu_S002C002P003R002A043_rgb_falling.avi -o out/x.json
    (a relative video path is resolved against $RECOGNIZER_DATA, default ../shared)
"""
import argparse
import json
import os
import sys

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.dirname(HERE)
sys.path.insert(0, TOOLS)
sys.path.insert(0, os.path.join(TOOLS, "bytetrack_reference"))

import pose_reference as pr  # noqa: E402
from bytetrack_ref import BYTETracker  # noqa: E402


def data_dir():
    return os.environ.get("RECOGNIZER_DATA",
                          os.path.join(os.path.dirname(TOOLS), "..", "shared"))


def extract(video, threads=1, max_frames=None):
    path = video if os.path.isabs(video) or os.path.exists(video) else os.path.join(data_dir(), video)
    model = os.path.join(data_dir(), pr.MODELS["rtmo"])
    session = pr.make_session(model, threads)
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise SystemExit(f"cannot open {path}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    tracker = BYTETracker(track_thresh=0.5, track_buffer=30, match_thresh=0.8, mot20=False,
                          frame_rate=round(fps))
    tracks = {}
    n = 0
    width = height = 0
    while True:
        ok, frame = cap.read()
        if not ok or (max_frames and n >= max_frames):
            break
        height, width = frame.shape[:2]
        persons, _ = pr.infer("rtmo", session, frame)
        dets = np.array([p["bbox"] + [p["score"]] for p in persons], np.float64).reshape(-1, 5)
        out = tracker.update(dets)
        for t in out:
            if t.frame_id == tracker.frame_id and t.det_index is not None:
                kp = persons[int(t.det_index)]["keypoints"]
                tracks.setdefault(str(int(t.track_id)), []).append(
                    [n, [[round(float(v), 3) for v in j] for j in kp]])
        n += 1
    return {"video": video, "width": width, "height": height, "fps": fps, "frames": n,
            "tracks": tracks}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("video")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-frames", type=int)
    a = ap.parse_args()
    doc = extract(a.video, a.threads, a.max_frames)
    os.makedirs(os.path.dirname(os.path.abspath(a.output)), exist_ok=True)
    with open(a.output, "w") as fh:
        json.dump(doc, fh, separators=(",", ":"))
    lens = {k: len(v) for k, v in doc["tracks"].items()}
    print(f"{a.video}: {doc['frames']} frames {doc['width']}x{doc['height']} tracks {lens}",
          file=sys.stderr)


if __name__ == "__main__":
    main()

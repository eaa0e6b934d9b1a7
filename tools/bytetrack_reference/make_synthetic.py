#!/usr/bin/env python3
"""Deterministic synthetic detection sequences that stress ByteTrack, run through the reference.

Writes tests/fixtures/bytetrack/synthetic_*.json (inputs + expected outputs, see run_reference.py).
Every scene uses numpy's legacy RandomState with a fixed seed (its stream is frozen), so running
this again gives the same files.

    python3 tools/bytetrack_reference/make_synthetic.py [--out tests/fixtures/bytetrack]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run_reference import run_sequence, write_json  # noqa: E402

W, H = 1920, 1080


def box(cx, cy, w, h):
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def noisy(rng, b, sigma):
    return [v + rng.normal(0, sigma) for v in b]


def det(b, score):
    return [float(b[0]), float(b[1]), float(b[2]), float(b[3]), float(np.clip(score, 0.0, 1.0))]


def iou(a, b):
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def shuffled(rng, dets):
    # Detector output order is not tied to identity.
    order = rng.permutation(len(dets))
    return [dets[i] for i in order]


def seq(name, frames, description, frame_rate=30, config=None):
    return {
        "name": name,
        "description": description,
        "frame_rate": frame_rate,
        "config": config or {"track_thresh": 0.5, "track_buffer": 30, "match_thresh": 0.8, "mot20": False},
        "frames": frames,
    }


def scene_crossing():
    """Two people walk towards each other and cross; the one behind is partly hidden (lower
    score, sometimes missed) while they overlap. A third person stands still."""
    rng = np.random.RandomState(1)
    n = 160
    frames = []
    for f in range(n):
        a = box(300 + f * 8.2, 600 + 3 * np.sin(f / 9), 110, 300)
        b = box(1620 - f * 8.0, 610, 105, 290)
        c = box(1500, 350, 70, 190)
        dets = [det(noisy(rng, a, 1.5), 0.88 + rng.normal(0, 0.03)),
                det(noisy(rng, c, 1.0), 0.8 + rng.normal(0, 0.03))]
        ov = iou(a, b)
        if ov > 0.05:
            # b is behind a: visible part shrinks, score drops to the low band, sometimes missed
            if rng.uniform() > 0.15:
                bb = list(b)
                if a[0] < b[0]:
                    bb[0] = max(b[0], a[2] - 20)
                else:
                    bb[2] = min(b[2], a[0] + 20)
                if bb[2] - bb[0] < 30:
                    bb = b
                dets.append(det(noisy(rng, bb, 2.0), 0.45 - 0.4 * ov + rng.normal(0, 0.05)))
        else:
            dets.append(det(noisy(rng, b, 1.5), 0.86 + rng.normal(0, 0.03)))
        frames.append(shuffled(rng, dets))
    return seq("synthetic_crossing", frames, scene_crossing.__doc__)


def scene_occlusion20():
    """A walking person is not detected for 20 frames (behind a pillar) and comes back where the
    motion model expects it; a second walker; a third person enters later."""
    rng = np.random.RandomState(2)
    n = 200
    frames = []
    for f in range(n):
        dets = []
        a = box(200 + f * 6.0, 540, 100, 280)
        if not (70 <= f < 90):
            dets.append(det(noisy(rng, a, 1.5), 0.9 + rng.normal(0, 0.03)))
        b = box(1700 - f * 4.0, 700 + f * 0.8, 120, 330)
        dets.append(det(noisy(rng, b, 1.5), 0.83 + rng.normal(0, 0.04)))
        if f >= 120:
            c = box(960, 200 + (f - 120) * 3.0, 60, 160)
            dets.append(det(noisy(rng, c, 1.0), 0.7 + rng.normal(0, 0.05)))
        frames.append(shuffled(rng, dets))
    return seq("synthetic_occlusion20", frames, scene_occlusion20.__doc__)


def scene_flicker():
    """A person whose score flickers around the high threshold (0.5) and sometimes under the low
    one (0.1); one that stays in the low band except for short high bursts; one that hovers around
    the birth threshold (0.6)."""
    rng = np.random.RandomState(3)
    n = 180
    frames = []
    for f in range(n):
        dets = []
        a = box(400 + f * 3.0, 500 + 40 * np.sin(f / 20), 90, 250)
        sa = 0.5 + 0.22 * np.sin(f / 3.0) + rng.normal(0, 0.08)
        if f % 17 == 5:
            sa = 0.05  # below the low threshold: dropped by the tracker
        dets.append(det(noisy(rng, a, 1.5), sa))
        b = box(1400 - f * 2.0, 650, 100, 270)
        sb = 0.3 + rng.normal(0, 0.08)
        if (f // 25) % 3 == 1 and f % 25 < 4:
            sb = 0.7
        dets.append(det(noisy(rng, b, 1.5), sb))
        c = box(900, 250 + f * 1.0, 70, 200)
        dets.append(det(noisy(rng, c, 1.2), 0.6 + rng.normal(0, 0.06)))
        frames.append(shuffled(rng, dets))
    return seq("synthetic_flicker", frames, scene_flicker.__doc__)


def scene_crowd30(n_frames=240):
    """30 people at once on random walks (velocity random walk, bouncing off the borders),
    5% misses, score noise with occasional low-band dips, low-score clutter and one-frame
    high-score false positives (unconfirmed tracks that must be dropped)."""
    rng = np.random.RandomState(4)
    k = 30
    pos = np.column_stack([rng.uniform(100, W - 100, k), rng.uniform(150, H - 150, k)])
    vel = rng.normal(0, 3, (k, 2))
    size = np.column_stack([rng.uniform(50, 90, k), rng.uniform(140, 260, k)])
    base = rng.uniform(0.6, 0.95, k)
    frames = []
    for f in range(n_frames):
        vel = 0.95 * vel + rng.normal(0, 0.8, (k, 2))
        pos = pos + vel
        for d in range(2):
            lo, hi = (60, W - 60) if d == 0 else (120, H - 120)
            over = (pos[:, d] < lo) | (pos[:, d] > hi)
            vel[over, d] *= -1
            pos[:, d] = np.clip(pos[:, d], lo, hi)
        dets = []
        for i in range(k):
            if rng.uniform() < 0.05:
                continue
            s = base[i] + rng.normal(0, 0.05)
            if rng.uniform() < 0.08:
                s = rng.uniform(0.15, 0.5)
            dets.append(det(noisy(rng, box(pos[i, 0], pos[i, 1], size[i, 0], size[i, 1]), 1.5), s))
        for _ in range(rng.poisson(2)):
            cx, cy = rng.uniform(50, W - 50), rng.uniform(50, H - 50)
            dets.append(det(box(cx, cy, rng.uniform(20, 60), rng.uniform(40, 120)), rng.uniform(0.1, 0.45)))
        if rng.uniform() < 0.1:
            cx, cy = rng.uniform(50, W - 50), rng.uniform(50, H - 50)
            dets.append(det(box(cx, cy, 60, 150), rng.uniform(0.6, 0.75)))
        frames.append(shuffled(rng, dets))
    return seq("synthetic_crowd30", frames, scene_crowd30.__doc__)


def scene_interval3():
    """Ten walkers; the detector runs on every third frame only (null frames: predict_only)."""
    rng = np.random.RandomState(5)
    k = 10
    n = 150
    start = np.column_stack([rng.uniform(200, W - 200, k), rng.uniform(200, H - 200, k)])
    v = rng.normal(0, 2.5, (k, 2))
    size = np.column_stack([rng.uniform(60, 100, k), rng.uniform(170, 280, k)])
    frames = []
    for f in range(n):
        if f % 3 != 0:
            frames.append(None)
            continue
        dets = []
        for i in range(k):
            p = start[i] + v[i] * f
            if rng.uniform() < 0.05:
                continue
            dets.append(det(noisy(rng, box(p[0], p[1], size[i, 0], size[i, 1]), 1.5), 0.85 + rng.normal(0, 0.05)))
        frames.append(shuffled(rng, dets))
    return seq("synthetic_interval3", frames, scene_interval3.__doc__)


def scene_timeout60():
    """60 fps, track_buffer 30 -> max_time_lost = int(60 / 30 * 30) = 60 frames. Standing people
    vanish for 59, 60, 61, 62 and 63 frames and come back (around the removal edge, including the
    frame on which the official code still keeps a just-removed track in its lost list); a walker
    that is lost and re-born next to its lost track (duplicate removal at IoU distance 0.15)."""
    rng = np.random.RandomState(6)
    n = 260
    gaps = [59, 60, 61, 62, 63]
    frames = []
    for f in range(n):
        dets = []
        for g, gap in enumerate(gaps):
            b = box(200 + g * 300, 300, 80, 220)
            start = 40 + 5 * g
            if start <= f < start + gap:
                continue
            if start + gap + 40 <= f < start + gap + 43:
                continue  # lost again briefly after coming back
            dets.append(det(noisy(rng, b, 0.8), 0.85 + rng.normal(0, 0.03)))
        # walker with a jump: detections resume 40 px off the predicted path after a short gap
        w = box(300 + f * 4.0, 800, 90, 240)
        if 100 <= f < 106:
            pass
        elif 106 <= f < 130:
            ww = list(w)
            ww[1] += 25
            ww[3] += 25
            dets.append(det(noisy(rng, ww, 1.0), 0.9))
        else:
            dets.append(det(noisy(rng, w, 1.0), 0.9 + rng.normal(0, 0.02)))
        frames.append(shuffled(rng, dets))
    return seq("synthetic_timeout60", frames, scene_timeout60.__doc__, frame_rate=60)


def scene_dense_group():
    """Twelve people milling about in a small area (boxes overlapping heavily), 10% misses,
    partial boxes and score dips: the cost-limit padding of lap.lapjv decides here (a single
    good match is preferred over two mediocre ones, which plain assign-then-threshold would take)."""
    rng = np.random.RandomState(7)
    k = 12
    n = 220
    cx0, cy0 = 900, 560
    pos = np.column_stack([rng.uniform(cx0 - 250, cx0 + 250, k), rng.uniform(cy0 - 120, cy0 + 120, k)])
    vel = rng.normal(0, 2, (k, 2))
    size = np.column_stack([rng.uniform(80, 120, k), rng.uniform(220, 300, k)])
    frames = []
    for f in range(n):
        vel = 0.9 * vel + rng.normal(0, 1.0, (k, 2))
        pos = pos + vel
        pull = np.array([cx0, cy0]) - pos
        vel += 0.01 * pull
        dets = []
        for i in range(k):
            if rng.uniform() < 0.1:
                continue
            b = box(pos[i, 0], pos[i, 1], size[i, 0], size[i, 1])
            s = 0.8 + rng.normal(0, 0.08)
            if rng.uniform() < 0.15:
                # partial box (occluded lower body), lower score
                b[3] = b[1] + (b[3] - b[1]) * rng.uniform(0.5, 0.8)
                s = rng.uniform(0.3, 0.65)
            dets.append(det(noisy(rng, b, 3.0), s))
        frames.append(shuffled(rng, dets))
    return seq("synthetic_dense_group", frames, scene_dense_group.__doc__)


def scene_duplicates():
    """Duplicate detections and duplicate tracks. (1) For a few frames at a time the detector
    reports a second box on the same person (IoU about 0.85-0.95): a second track is born, and when
    the extra box goes away one of the two is lost while it overlaps the other, so
    remove_duplicate_stracks (IoU distance < 0.15) drops the younger one. (2) A standing person's
    box jumps sideways after a short gap (a new track is born) and slides back onto the old,
    now lost track, which is older: the *tracked* young track is dropped."""
    rng = np.random.RandomState(8)
    n = 200
    frames = []
    for f in range(n):
        dets = []
        for i in range(3):
            b = box(300 + i * 350 + f * (1.0 + i), 400 + i * 60, 90, 240)
            dets.append(det(noisy(rng, b, 0.7), 0.9 + rng.normal(0, 0.02)))
            phase = (f + 13 * i) % 45
            if 20 <= phase < 20 + 3 + i * 2:
                d = list(b)
                d[0] += 4 + 2 * i
                d[2] += 4 + 2 * i
                d[1] += 3
                dets.append(det(noisy(rng, d, 0.7), 0.8 + rng.normal(0, 0.03)))
        # standing person, jump and slide back
        base = box(1500, 750, 100, 260)
        if f < 60:
            dets.append(det(noisy(rng, base, 0.8), 0.9))
        elif f < 63:
            pass
        else:
            off = max(0.0, 75.0 - (f - 63) * 4.0)
            b = list(base)
            b[0] += off
            b[2] += off
            dets.append(det(noisy(rng, b, 0.8), 0.9))
        frames.append(shuffled(rng, dets))
    return seq("synthetic_duplicates", frames, scene_duplicates.__doc__)


SCENES = [scene_crossing, scene_occlusion20, scene_flicker, scene_crowd30, scene_interval3, scene_timeout60,
          scene_dense_group, scene_duplicates]


def main():
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(root, "tests", "fixtures", "bytetrack"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for scene in SCENES:
        s = scene()
        out = run_sequence(s)
        path = os.path.join(args.out, s["name"] + ".json")
        write_json(out, path)
        ids = {t["id"] for r in out["expected"] for t in r}
        n_out = sum(len(r) for r in out["expected"])
        print(f"{s['name']}: {len(out['frames'])} frames, {n_out} track outputs, {len(ids)} ids, "
              f"{os.path.getsize(path) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()

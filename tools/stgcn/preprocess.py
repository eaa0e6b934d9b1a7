"""The `stgcnclassify` input contract, implemented once and used for training, evaluation,
ONNX checks and the Rust fixtures.

Model input: float32 `[N, M, T, V=17, C=3]`, C = (x, y, score); output `[N, K]` logits.

One window = the last L <= T frames of one track (M = 1 for the project's models), keypoints in
source-image pixels `(x, y, score)`, plus the frame size `(w, h)`:

1. Joints with `score <= score_threshold` (0.01) are invalid: `(0, 0, 0)` after normalisation.
2. Normalisation
   - "window" (the project's models): over all VALID joints of all real frames of the window,
     `cx = (min x + max x) / 2`, `cy = (min y + max y) / 2`,
     `s = max(max x - min x, max y - min y) / 2` (`s = 1` if `s < 1e-6`);
     `x' = (x - cx) / s`, `y' = (y - cy) / s`, score unchanged. No valid joint: all zeros.
   - "frame" (pyskl PreNormalize2D): `x' = (x - w/2) / (w/2)`, `y' = (y - h/2) / (h/2)`.
3. Padding: real frames occupy `t = 0 .. L-1`; `t = L .. T-1` are all zeros. A window longer
   than T keeps its last T frames.

Arithmetic is float64 and the result is cast to float32 once at the end (the Rust side may use
f32 or f64; the difference is far below the 1e-4 tolerance on scores).
"""
import numpy as np

SCORE_THRESHOLD = 0.01
NUM_JOINTS = 17

COCO_JOINTS = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
               "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
               "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"]
# index of each joint's mirror image (horizontal flip swaps left and right)
FLIP_INDEX = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]


def normalize_window(frames, width=None, height=None, T=None, mode="window",
                     score_threshold=SCORE_THRESHOLD):
    """One person's window -> float32 `[T, 17, 3]` (one M slot).

    frames: array-like `[L, 17, 3]` in pixels (x, y, score), oldest first.
    width, height: the frame size (only used by mode "frame").
    T: the model's window; None = L (no padding).
    """
    f = np.asarray(frames, dtype=np.float64).reshape(-1, NUM_JOINTS, 3)
    if T is None:
        T = len(f)
    f = f[-T:] if len(f) > T else f
    L = len(f)
    out = np.zeros((T, NUM_JOINTS, 3), dtype=np.float64)
    if L == 0:
        return out.astype(np.float32)
    valid = f[..., 2] > score_threshold
    if mode == "window":
        if not valid.any():
            return out.astype(np.float32)
        xs, ys = f[..., 0][valid], f[..., 1][valid]
        x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
        cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
        s = max(x1 - x0, y1 - y0) / 2.0
        if s < 1e-6:
            s = 1.0
        nx, ny = (f[..., 0] - cx) / s, (f[..., 1] - cy) / s
    elif mode == "frame":
        hw, hh = width / 2.0, height / 2.0
        nx, ny = (f[..., 0] - hw) / hw, (f[..., 1] - hh) / hh
    else:
        raise ValueError(f"unknown normalisation {mode!r}")
    out[:L, :, 0] = np.where(valid, nx, 0.0)
    out[:L, :, 1] = np.where(valid, ny, 0.0)
    out[:L, :, 2] = np.where(valid, f[..., 2], 0.0)
    return out.astype(np.float32)


def build_input(windows, T, mode="window", score_threshold=SCORE_THRESHOLD):
    """windows: list of dicts {"frames": [L,17,3] or list of M such, "width", "height"}.

    Returns float32 `[N, M, T, 17, 3]`. A window whose "frames" is a plain `[L,17,3]` is M = 1;
    multi-person windows give "persons": [[L,17,3], ...] instead (missing persons = zeros).
    """
    M = max(len(w["persons"]) if "persons" in w else 1 for w in windows) if windows else 1
    x = np.zeros((len(windows), M, T, NUM_JOINTS, 3), dtype=np.float32)
    for n, w in enumerate(windows):
        persons = w["persons"] if "persons" in w else [w["frames"]]
        for m, p in enumerate(persons):
            x[n, m] = normalize_window(p, w.get("width"), w.get("height"), T, mode,
                                       score_threshold)
    return x


def softmax(logits):
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)

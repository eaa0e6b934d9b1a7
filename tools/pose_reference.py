#!/usr/bin/env python3
"""Python reference implementation of the `rtmopose` element's inference path.

It runs the two pose-model contracts that `rtmopose` supports (SPEC.md section 3) with
onnxruntime on the CPU and OpenCV pre-processing, and writes the results as JSON test fixtures
that the Rust element is compared against:

* RTMO contract (``input [1,3,640,640]`` BGR 0-255 -> ``dets [1,N,5]`` + ``keypoints [1,N,17,3]``)
* raw YOLO-pose export (``images [1,3,640,640]`` RGB 0-1 -> ``output0 [1,56,A]``)

Pipeline (identical for both models except colour order / scaling / decode):

1. ``letterbox``: scale = min(640/w, 640/h); resize to (round(w*scale), round(h*scale)) with
   cv2.INTER_LINEAR; paste TOP-LEFT on a 640x640 canvas filled with 114.
2. model-specific tensor layout (``to_input_rtmo`` / ``to_input_yolo``).
3. model-specific decode to (boxes x1y1x2y2, scores, keypoints) in 640 input pixels
   (``decode_rtmo`` / ``decode_yolo``).
4. ``postprocess``: score >= score_threshold, greedy NMS at nms_threshold (``nms``), cap at
   max_persons, then ``to_image_coords`` (divide by scale, clip boxes to the image).

Usage::

    python3 tools/pose_reference.py --data $RECOGNIZER_DATA --out tests/fixtures
    python3 tools/pose_reference.py --image some.jpg [--model rtmo|yolo]   # JSON on stdout

Only numpy, opencv-python-headless and onnxruntime are needed (tools/requirements.txt).
"""

import argparse
import glob
import json
import math
import os
import re
import sys

import cv2
import numpy as np
import onnxruntime as ort

INPUT_SIZE = 640
PAD_VALUE = 114
NUM_KEYPOINTS = 17
SCORE_THRESHOLD = 0.3
NMS_THRESHOLD = 0.65
MAX_PERSONS = 20

MODELS = {
    "rtmo": "models/pose/yolo11n-pose_rtmo-contract.onnx",
    "yolo": "models/pose/yolo11n-pose.onnx",
}
LETTERBOX_DESC = "top-left, pad 114, cv2.INTER_LINEAR"


def default_data_dir():
    """$RECOGNIZER_DATA, else ../shared relative to the repository root."""
    env = os.environ.get("RECOGNIZER_DATA")
    if env:
        return env
    repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.join(repo_root, "..", "shared")


# --------------------------------------------------------------------------------------------
# Pre-processing
# --------------------------------------------------------------------------------------------

def round_half_up(x):
    """Round to the nearest integer, halves away from zero (like Rust's f64::round for x >= 0).

    Python's built-in round() rounds halves to even; the two differ only on exact .5 values.
    """
    return int(math.floor(x + 0.5))


def letterbox(image, size=INPUT_SIZE, pad=PAD_VALUE):
    """Letterbox an HxWx3 uint8 image into a size x size canvas.

    scale = min(size/w, size/h) (computed in double precision); the image is resized to
    (round(w*scale), round(h*scale)) with cv2.INTER_LINEAR and pasted at the TOP-LEFT corner of a
    canvas filled with `pad`.  No offset is introduced, so input pixel (x, y) corresponds to
    original pixel (x/scale, y/scale).

    Returns (canvas uint8 [size,size,3], scale).  Channel order is that of `image`.
    """
    h, w = image.shape[:2]
    scale = min(size / w, size / h)
    new_w = min(size, max(1, round_half_up(w * scale)))
    new_h = min(size, max(1, round_half_up(h * scale)))
    canvas = np.full((size, size, 3), pad, dtype=np.uint8)
    if (new_w, new_h) == (w, h):
        resized = image
    else:
        resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    canvas[:new_h, :new_w] = resized
    return canvas, scale


def to_input_rtmo(canvas_bgr):
    """RTMO contract input: NCHW float32, BGR, raw 0-255 values, no mean/std."""
    return np.ascontiguousarray(canvas_bgr.transpose(2, 0, 1)[None].astype(np.float32))


def to_input_yolo(canvas_bgr):
    """Raw YOLO-pose input: NCHW float32, RGB, scaled to 0-1 (pad 114 becomes 114/255)."""
    rgb = canvas_bgr[:, :, ::-1]
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[None].astype(np.float32) / 255.0)


# --------------------------------------------------------------------------------------------
# Decoding (model outputs -> boxes, scores, keypoints in 640x640 input pixels)
# --------------------------------------------------------------------------------------------

def decode_rtmo(dets, keypoints):
    """Decode RTMO contract outputs for batch item 0.

    dets [1,N,5] = (x1, y1, x2, y2, score); keypoints [1,N,17,3] = (x, y, score).
    Returns boxes [N,4] x1y1x2y2, scores [N], keypoints [N,17,3] (all float64).
    """
    dets = np.asarray(dets, dtype=np.float64)[0]
    kpts = np.asarray(keypoints, dtype=np.float64)[0]
    return dets[:, :4], dets[:, 4], kpts.reshape(-1, NUM_KEYPOINTS, 3)


def decode_yolo(output0):
    """Decode a raw YOLO-pose (v8/v11) output0 [1, 56, A] for batch item 0.

    Per anchor (column): cx, cy, w, h, person score, then 17 x (x, y, conf); the score and the
    keypoint confidences are already probabilities (no sigmoid applied here).  Boxes are converted
    from centre/size to x1 = cx - w/2, y1 = cy - h/2, x2 = cx + w/2, y2 = cy + h/2.
    Returns boxes [A,4], scores [A], keypoints [A,17,3] (all float64).
    """
    out = np.asarray(output0, dtype=np.float64)[0].T  # [A, 56]
    cx, cy, w, h = out[:, 0], out[:, 1], out[:, 2], out[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    scores = out[:, 4]
    kpts = out[:, 5:5 + NUM_KEYPOINTS * 3].reshape(-1, NUM_KEYPOINTS, 3)
    return boxes, scores, kpts


# --------------------------------------------------------------------------------------------
# Post-processing
# --------------------------------------------------------------------------------------------

def iou(box, boxes):
    """IoU of one x1y1x2y2 box with each row of boxes [M,4]; areas are (x2-x1)*(y2-y1), no +1.

    Degenerate boxes have zero area; a zero union gives IoU 0.
    """
    ix1 = np.maximum(box[0], boxes[:, 0])
    iy1 = np.maximum(box[1], boxes[:, 1])
    ix2 = np.minimum(box[2], boxes[:, 2])
    iy2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area = max(box[2] - box[0], 0) * max(box[3] - box[1], 0)
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(boxes, scores, iou_threshold, max_keep):
    """Greedy NMS.

    Candidates are visited by score descending (stable: equal scores keep their original row
    order); a candidate is kept unless its IoU with an already kept box is > iou_threshold.
    Stops after max_keep boxes.  Returns the kept indices, highest score first.
    """
    order = np.argsort(-scores, kind="stable")
    keep = []
    for i in order:
        if len(keep) >= max_keep:
            break
        if keep and np.any(iou(boxes[i], boxes[keep]) > iou_threshold):
            continue
        keep.append(int(i))
    return keep


def to_image_coords(boxes, kpts, scale, width, height):
    """Map 640-input coordinates back to the original image (top-left letterbox: no offset).

    x and y of boxes and keypoints are divided by `scale`; boxes are clipped to [0,width] x
    [0,height]; keypoints are not clipped and keypoint scores are unchanged.
    """
    boxes = boxes / scale
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, width)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, height)
    kpts = kpts.copy()
    kpts[:, :, :2] /= scale
    return boxes, kpts


def postprocess(boxes, scores, kpts, scale, width, height,
                score_threshold=SCORE_THRESHOLD, nms_threshold=NMS_THRESHOLD,
                max_persons=MAX_PERSONS):
    """score >= score_threshold, greedy NMS, cap at max_persons, map back to the image.

    Returns a list of persons {"bbox", "score", "keypoints"} sorted by score descending.
    """
    sel = np.nonzero(scores >= score_threshold)[0]
    boxes, scores, kpts = boxes[sel], scores[sel], kpts[sel]
    keep = nms(boxes, scores, nms_threshold, max_persons)
    boxes, scores, kpts = boxes[keep], scores[keep], kpts[keep]
    boxes, kpts = to_image_coords(boxes, kpts, scale, width, height)
    return [
        {"bbox": boxes[i].tolist(), "score": float(scores[i]), "keypoints": kpts[i].tolist()}
        for i in range(len(keep))
    ]


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------

def make_session(path, threads):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def infer(kind, session, image):
    """Run one model kind ('rtmo' or 'yolo') on a BGR uint8 image; returns (persons, raw_info)."""
    height, width = image.shape[:2]
    canvas, scale = letterbox(image)
    if kind == "rtmo":
        dets, kpts = session.run(["dets", "keypoints"], {"input": to_input_rtmo(canvas)})
        boxes, scores, kp = decode_rtmo(dets, kpts)
        raw = {"dets_shape": list(dets.shape), "keypoints_shape": list(kpts.shape)}
    else:
        (out,) = session.run(["output0"], {"images": to_input_yolo(canvas)})
        boxes, scores, kp = decode_yolo(out)
        raw = {"output0_shape": list(out.shape)}
    raw["scale"] = scale
    raw["rows"] = int(len(scores))
    raw["rows_above_threshold"] = int(np.sum(scores >= SCORE_THRESHOLD))
    if len(scores):
        raw["score_min"] = float(scores.min())
        raw["score_max"] = float(scores.max())
    return postprocess(boxes, scores, kp, scale, width, height), raw


def rounded(obj, ndigits=4):
    """Round every float in a nested structure to `ndigits` decimals."""
    if isinstance(obj, float):
        return round(obj, ndigits)
    if isinstance(obj, list):
        return [rounded(o, ndigits) for o in obj]
    if isinstance(obj, dict):
        return {k: rounded(v, ndigits) for k, v in obj.items()}
    return obj


def to_json(doc):
    """Indented JSON with every list of plain numbers (bbox, keypoint triple) kept on one line."""
    text = json.dumps(doc, indent=1)
    return re.sub(r"\[[-0-9.eE,\s]*\]", lambda m: re.sub(r"\s+", " ", m.group(0))
                  .replace("[ ", "[").replace(" ]", "]"), text) + "\n"


def image_entry(file_label, image, persons):
    return {"file": file_label, "width": int(image.shape[1]), "height": int(image.shape[0]),
            "persons": persons}


def fixture_images(data):
    coco = sorted(glob.glob(os.path.join(data, "media", "images", "coco_gt", "*.jpg")),
                  key=os.path.basename)
    rels = [os.path.relpath(p, data).replace(os.sep, "/") for p in coco]
    return rels + ["media/images/bus.jpg", "media/images/zidane.jpg"]


def load_image(path):
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        sys.exit(f"error: cannot decode image {path}")
    return image


def summarize(kind, label, persons, raw, width, height):
    outside = sum(1 for p in persons for (x, y, _) in p["keypoints"]
                  if not (0 <= x <= width and 0 <= y <= height))
    scores = ", ".join(f"{p['score']:.3f}" for p in persons)
    shapes = {k: v for k, v in raw.items() if k.endswith("_shape")}
    print(f"[{kind}] {label} ({width}x{height}, scale {raw['scale']:.4f}): "
          f"{len(persons)} persons [{scores}]; raw rows {raw['rows']} "
          f"(>= thr {raw['rows_above_threshold']}, score range "
          f"{raw.get('score_min', float('nan')):.4f}..{raw.get('score_max', float('nan')):.4f}) "
          f"{shapes}; keypoints outside image: {outside}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=default_data_dir(),
                    help="shared data directory (default $RECOGNIZER_DATA or ../shared)")
    ap.add_argument("--out", default=None, help="directory for pose_reference_{rtmo,yolo}.json")
    ap.add_argument("--image", default=None, help="run on one image and print JSON to stdout")
    ap.add_argument("--model", choices=["rtmo", "yolo", "both"], default="both",
                    help="model(s) for --image (default both)")
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    args = ap.parse_args()

    if args.image is None and args.out is None:
        ap.error("give --out DIR (fixtures) or --image PATH")

    kinds = ["rtmo", "yolo"] if (args.image is None or args.model == "both") else [args.model]
    sessions = {}
    for kind in kinds:
        path = os.path.join(args.data, MODELS[kind])
        if not os.path.isfile(path):
            sys.exit(f"error: model not found: {path}")
        sessions[kind] = make_session(path, args.threads)

    header = lambda kind: {"model": MODELS[kind], "score_threshold": SCORE_THRESHOLD,
                           "nms_threshold": NMS_THRESHOLD, "max_persons": MAX_PERSONS,
                           "letterbox": LETTERBOX_DESC}

    if args.image is not None:
        image = load_image(args.image)
        result = {}
        for kind in kinds:
            persons, raw = infer(kind, sessions[kind], image)
            summarize(kind, args.image, persons, raw, image.shape[1], image.shape[0])
            result[kind] = rounded(dict(header(kind),
                                        images=[image_entry(args.image, image, persons)]))
        out = result[kinds[0]] if len(kinds) == 1 else result
        sys.stdout.write(to_json(out))
        return

    os.makedirs(args.out, exist_ok=True)
    files = fixture_images(args.data)
    for kind in kinds:
        entries = []
        total = 0
        for rel in files:
            image = load_image(os.path.join(args.data, rel))
            persons, raw = infer(kind, sessions[kind], image)
            summarize(kind, rel, persons, raw, image.shape[1], image.shape[0])
            entries.append(image_entry(rel, image, persons))
            total += len(persons)
        doc = rounded(dict(header(kind), images=entries))
        path = os.path.join(args.out, f"pose_reference_{kind}.json")
        with open(path, "w") as f:
            f.write(to_json(doc))
        print(f"[{kind}] {total} persons in {len(files)} images -> {path}", file=sys.stderr)


if __name__ == "__main__":
    main()

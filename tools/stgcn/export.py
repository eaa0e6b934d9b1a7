#!/usr/bin/env python3
"""Export a checkpoint of train.py to ONNX in the `stgcnclassify` contract and check it.

    python3 tools/stgcn/export.py out/stgcn/fall.pt --name fall_stgcnpp     # -> models/fall_stgcnpp.{onnx,labels}

Several checkpoints of one task export as one graph returning their mean logits (ensemble);
`--flip-average` makes each model return the mean logits of the window and its mirror image;
`--fall-threshold t` (normal/fall models) shifts the fall logit so that the element's argmax
labels a window fall where the fall probability is above t.

Graph: input `keypoint` float32 [N, 1, T, 17, 3] (N dynamic), output `logits` [N, K]; opset 17.
metadata_props: recognizer.normalization = window, recognizer.labels = labels joined by "\\n",
recognizer.output = logits, recognizer.window = T, recognizer.min_frames = min_frames; fall
models also recognizer.fall_split (train.py --fall-split: the test split they never saw).

Check: onnxruntime (CPU) against PyTorch (eval mode) on windows of the task's test split
(contract preprocessing, lengths min_frames..T) and on random input with a batch of 1 and of 7;
prints and returns the max abs difference of the logits.
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
from model import FACE_JOINTS, STGCNPP  # noqa: E402
from preprocess import build_input  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_checkpoint(path):
    ck = torch.load(path, map_location="cpu", weights_only=False)
    # checkpoints from before per-task ignored joints masked the face only
    model = STGCNPP(len(ck["labels"]), width=ck["width"],
                    ignore_joints=tuple(ck.get("ignore_joints", FACE_JOINTS)),
                    features=tuple(ck.get("features", ("joint",))))
    # "parents" was saved as state by the first bone/motion checkpoints; it is a constant
    state = {k: v for k, v in ck["state_dict"].items() if k != "parents"}
    model.load_state_dict(state)
    model.eval()
    return model, ck


class Ensemble(torch.nn.Module):
    """Mean logits of several models trained for the same task (same labels, T, min_frames)."""

    def __init__(self, models):
        super().__init__()
        self.members = torch.nn.ModuleList(models)

    @property
    def flip_average(self):
        return all(m.flip_average for m in self.members)

    def forward(self, x):
        return torch.stack([m(x) for m in self.members]).mean(dim=0)


class FallThreshold(torch.nn.Module):
    """A two-class (normal, fall) model whose fall logit is shifted by -logit(t): softmax then
    gives a fall probability above 0.5 exactly where the wrapped model's is above t, so the
    element's argmax applies the decision threshold chosen on validation (select_fall.py)."""

    def __init__(self, model, threshold):
        super().__init__()
        if not 0.0 < threshold < 1.0:
            raise SystemExit(f"--fall-threshold must lie in (0, 1), got {threshold}")
        self.inner = model
        self.threshold = threshold
        bias = -float(np.log(threshold / (1.0 - threshold)))
        self.register_buffer("bias", torch.tensor([0.0, bias]), persistent=False)

    @property
    def flip_average(self):
        return self.inner.flip_average

    def forward(self, x):
        return self.inner(x) + self.bias


def load_models(paths, flip_average=False):
    """One model, or the ensemble of several checkpoints of one task, in eval mode."""
    models, cks = [], []
    for path in paths:
        model, ck = load_checkpoint(path)
        model.flip_average = flip_average
        models.append(model)
        cks.append(ck)
    for ck in cks[1:]:
        for key in ("task", "labels", "T", "min_frames"):
            if ck[key] != cks[0][key]:
                raise SystemExit(f"{key} differs between the checkpoints: {ck[key]} vs {cks[0][key]}")
        split, first = data.checkpoint_fall_split(ck), data.checkpoint_fall_split(cks[0])
        if split != first:
            raise SystemExit(f"fall split differs between the checkpoints: {split} vs {first}")
    if len(models) == 1:
        return models[0], cks[0]
    return Ensemble(models).eval(), cks[0]


def export(model, ck, onnx_path):
    T = ck["T"]
    dummy = torch.zeros(2, 1, T, 17, 3)
    torch.onnx.export(model, (dummy,), onnx_path, input_names=["keypoint"],
                      output_names=["logits"], dynamic_axes={"keypoint": {0: "N"}, "logits": {0: "N"}},
                      opset_version=17, dynamo=False)
    m = onnx.load(onnx_path)
    meta = {
        "recognizer.normalization": "window",
        "recognizer.labels": "\n".join(ck["labels"]),
        "recognizer.output": "logits",
        "recognizer.window": str(T),
        "recognizer.min_frames": str(ck["min_frames"]),
    }
    if ck["task"] == "fall":
        # which held-out split the model may be scored on (evaluate.py reads it)
        meta["recognizer.fall_split"] = data.checkpoint_fall_split(ck)
    m.producer_name = "recognizer tools/stgcn/export.py"
    notes = []
    if isinstance(model, FallThreshold):
        notes.append(f"fall logit shifted by {float(model.bias[1]):.4f} (decision threshold "
                     f"{model.threshold} on the fall probability)")
        meta["recognizer.fall_threshold"] = str(model.threshold)
        inner = model.inner
    else:
        inner = model
    if isinstance(inner, Ensemble):
        notes[:0] = [f"ensemble: mean logits of {len(inner.members)} models"]
    if model.flip_average:
        notes.append("test-time flip: mean logits of the window and its mirror")
    m.doc_string = "; ".join(notes)
    del m.metadata_props[:]
    for k, v in meta.items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    onnx.checker.check_model(m)
    onnx.save(m, onnx_path)
    return meta


def check(model, onnx_path, T, windows=None, threads=1):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    batches = [rng.normal(size=(1, 1, T, 17, 3)).astype(np.float32),
               rng.normal(size=(7, 1, T, 17, 3)).astype(np.float32)]
    if windows:
        batches.append(build_input(windows, T))
    diff = 0.0
    for x in batches:
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        out = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        diff = max(diff, float(np.abs(ref - out).max()))
    return diff, sum(len(b) for b in batches)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", nargs="+", help="one checkpoint, or several of one task (ensemble)")
    ap.add_argument("--name", required=True)
    ap.add_argument("--models", default=os.path.join(REPO, "models"))
    ap.add_argument("--flip-average", action="store_true",
                    help="the graph returns the mean logits of the window and its mirror image")
    ap.add_argument("--fall-threshold", type=float,
                    help="normal/fall models: decision threshold on the fall probability, "
                    "chosen on validation (select_fall.py), baked in as a bias on the fall logit")
    a = ap.parse_args()
    torch.set_num_threads(2)
    model, ck = load_models(a.checkpoint, a.flip_average)
    if a.fall_threshold is not None:
        if ck["labels"] != ["normal", "fall"]:
            raise SystemExit(f"--fall-threshold needs labels ['normal', 'fall'], not {ck['labels']}")
        model = FallThreshold(model, a.fall_threshold).eval()
    os.makedirs(a.models, exist_ok=True)
    onnx_path = os.path.join(a.models, a.name + ".onnx")
    meta = export(model, ck, onnx_path)
    with open(os.path.join(a.models, a.name + ".labels"), "w") as fh:
        fh.write("\n".join(ck["labels"]) + "\n")
    import tasks  # noqa: E402  (loads the data only for the check)
    import evaluate  # noqa: E402
    wins = evaluate.test_windows(ck["task"], ck["T"])[::7][:300]
    diff, n = check(model, onnx_path, ck["T"], wins)
    print(json.dumps(dict(onnx=os.path.relpath(onnx_path, REPO), metadata=meta,
                          check_windows=n, max_abs_diff_logits=diff), indent=1))
    if diff > 1e-4:
        raise SystemExit(f"onnxruntime and PyTorch disagree: {diff}")


if __name__ == "__main__":
    main()

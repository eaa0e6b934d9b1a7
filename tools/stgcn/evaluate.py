#!/usr/bin/env python3
"""Evaluate a trained classifier (ONNX through onnxruntime, or a train.py checkpoint) on its
task's held-out split, with the contract preprocessing (preprocess.build_input).

    python3 tools/stgcn/evaluate.py models/fall_stgcnpp.onnx --task fall --out models
    python3 tools/stgcn/evaluate.py models/penn_action_stgcnpp.onnx --task penn --out models

fall: held-out = UP-Fall subject S10 + Le2i Home (MD4FD; both scenes, or only those the
      model's fall split holds out, data.FALL_SPLITS) + Penn Action official test + JHMDB
      split-1 test, windows of L = T (48) and L = 20 frames (tasks.fall_test_windows).
penn: Penn Action official test split, one prediction per clip: the clip itself when it has
      <= T frames, otherwise the mean softmax of its T-frame windows (stride 25).

Writes <out>/<name>_metrics.json (accuracy, per-class precision/recall/F1, confusion matrix,
per-source figures) and <out>/<name>_confusion[_L20].png; prints a summary.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import tasks  # noqa: E402
from preprocess import build_input, softmax  # noqa: E402


def test_items(task, split="test"):
    if task == "penn":
        items, _ = data.load_penn()
        return [s for s in items if s["split"] == "test"]
    return data.fall_pools()[split]


def test_windows(task, T, L=None, split="test"):
    """Evaluation windows of a task; for the fall task `split` may be "val" (the validation
    subset of the training sources, data.FALL_VAL_*) or "val_plus_urfd" (that and every URFD
    window, for runs trained with train.py --hold-out-source) instead of the held-out "test"."""
    items = test_items(task, split)
    if task == "penn":
        return [dict(frames=w, width=c["width"], height=c["height"], label=c["label"])
                for c in tasks.penn_test_clips(items, T) for w in c["windows"]]
    # validation: every 12th-frame window of the normal clips, the test split keeps its
    # one centre window per clip (the protocol all reported test figures use)
    return tasks.fall_test_windows(items, L or T, clip_stride=None if split == "test" else 12)


class Predictor:
    """Scores (softmax) for windows, from an .onnx file or a train.py checkpoint."""

    def __init__(self, path, threads=2):
        self.path = path
        if path.endswith(".onnx"):
            import onnx
            import onnxruntime as ort
            meta = {p.key: p.value for p in onnx.load(path).metadata_props}
            self.labels = meta["recognizer.labels"].split("\n")
            self.T = int(meta["recognizer.window"])
            self.fall_split = meta.get("recognizer.fall_split", data.FALL_SPLIT_DEFAULT)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            self.sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
            self.run = lambda x: self.sess.run(None, {self.sess.get_inputs()[0].name: x})[0]
        else:
            import torch
            from export import load_checkpoint
            torch.set_num_threads(threads)
            self.model, ck = load_checkpoint(path)
            self.labels, self.T = ck["labels"], ck["T"]
            self.fall_split = data.checkpoint_fall_split(ck)

            def run(x):
                with torch.no_grad():
                    return self.model(torch.from_numpy(x)).numpy()
            self.run = run

    def scores(self, windows, batch=256):
        out = []
        for i in range(0, len(windows), batch):
            out.append(softmax(self.run(build_input(windows[i:i + batch], self.T))))
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)))


def metrics(y_true, y_pred, labels):
    K = len(labels)
    cm = np.zeros((K, K), int)
    for t, p in zip(y_true, y_pred):
        cm[t, p] += 1
    per = {}
    for k, name in enumerate(labels):
        tp = cm[k, k]
        prec = tp / cm[:, k].sum() if cm[:, k].sum() else 0.0
        rec = tp / cm[k].sum() if cm[k].sum() else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per[name] = dict(precision=round(float(prec), 4), recall=round(float(rec), 4),
                         f1=round(float(f1), 4), support=int(cm[k].sum()))
    return dict(accuracy=round(float(np.trace(cm) / max(cm.sum(), 1)), 4), n=int(cm.sum()),
                per_class=per, confusion=cm.tolist(), confusion_axes="rows = true, columns = predicted")


def fall_classes(labels):
    """[K] bool: the classes that count as a fall (their label contains "fall")."""
    return np.array(["fall" in n for n in labels])


def fall_binary(y_true, y_pred, labels):
    fall = fall_classes(labels)
    t, p = fall[np.asarray(y_true)], fall[np.asarray(y_pred)]
    tp, fp, fn = int((t & p).sum()), int((~t & p).sum()), int((t & ~p).sum())
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    return dict(fall_precision=round(prec, 4), fall_recall=round(rec, 4),
                fall_f1=round(2 * prec * rec / (prec + rec) if prec + rec else 0.0, 4),
                tp=tp, fp=fp, fn=fn, tn=int((~t & ~p).sum()))


def f1_interval(truth, predicted, groups, draws=2000, seed=0):
    """95 % interval of the fall F1 (fall = the boolean arrays `truth`, `predicted`) by the
    percentile bootstrap over whole recordings (`groups`): the windows of one UP-Fall run are
    not independent, so resampling windows would understate the spread."""
    keys, index = np.unique(np.asarray(groups), return_inverse=True)
    count = lambda m: np.bincount(index, m.astype(float), len(keys))  # noqa: E731
    tp, fp, fn = count(truth & predicted), count(~truth & predicted), count(truth & ~predicted)
    pick = np.random.default_rng(seed).integers(0, len(keys), (draws, len(keys)))
    TP, FP, FN = tp[pick].sum(1), fp[pick].sum(1), fn[pick].sum(1)
    f1 = 2 * TP / np.maximum(2 * TP + FP + FN, 1)
    return [round(float(v), 4) for v in np.percentile(f1, [2.5, 97.5])]


def plot_confusion(cm, labels, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cm = np.asarray(cm)
    K = len(labels)
    fig, ax = plt.subplots(figsize=(2.2 + 0.42 * K, 1.8 + 0.4 * K), dpi=80)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(K):
        for j in range(K):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.6 else "black")
    ax.set_xticks(range(K), labels, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(K), labels, fontsize=7)
    ax.set_xlabel("predicted", fontsize=8)
    ax.set_ylabel("true", fontsize=8)
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def eval_fall(pred, L, split="test"):
    wins = test_windows("fall", pred.T, L, split)
    sc = pred.scores(wins)
    y = np.array([w["label"] for w in wins])
    p = sc.argmax(1)
    res = metrics(y, p, pred.labels)
    res.update(fall_binary(y, p, pred.labels))
    res["window_frames"] = L
    fall = fall_classes(pred.labels)
    # a window's recording: MD4FD windows carry it (overlapping windows of one video); for the
    # others it is the id without the last ":" part (frame, "centre48")
    res["fall_f1_95ci"] = f1_interval(fall[y], fall[p], [w.get("recording") or w["id"].rsplit(":", 1)[0] for w in wins])
    res["fall_f1_95ci_method"] = ("percentile bootstrap over recordings (overlapping MD4FD windows of one video "
                                  "are one recording), 2000 draws")
    by = {}
    for src in sorted({w["source"] for w in wins}):
        m = np.array([w["source"] == src for w in wins])
        b = fall_binary(y[m], p[m], pred.labels)
        by[src] = dict(windows=int(m.sum()), accuracy=round(float((y[m] == p[m]).mean()), 4),
                       fall_windows=int((y[m] == 1).sum()), fall_recall=b["fall_recall"],
                       false_falls=b["fp"])
    res["by_source"] = by
    res["errors"] = [dict(id=w["id"], label=pred.labels[w["label"]],
                          predicted=pred.labels[int(q)], score=round(float(s[q]), 3))
                     for w, q, s in zip(wins, p, sc) if q != w["label"]]
    return res


def eval_penn(pred):
    clips = tasks.penn_test_clips(test_items("penn"), pred.T)
    flat = [dict(frames=w, width=c["width"], height=c["height"]) for c in clips for w in c["windows"]]
    sc = pred.scores(flat)
    y, p, p_first, k = [], [], [], 0
    for c in clips:
        s = sc[k:k + len(c["windows"])]
        k += len(c["windows"])
        y.append(c["label"])
        p.append(int(s.mean(0).argmax()))
        p_first.append(int(s[0].argmax()))
    res = metrics(y, p, pred.labels)
    res["protocol"] = ("one prediction per official test clip: the whole clip if <= T frames, "
                       "else the mean softmax of its T-frame windows (stride 25, plus the last)")
    res["clips_longer_than_T"] = int(sum(len(c["windows"]) > 1 for c in clips))
    res["accuracy_first_window_only"] = round(float(np.mean(np.array(p_first) == np.array(y))), 4)
    res["errors"] = [dict(id=c["id"], label=pred.labels[t], predicted=pred.labels[q])
                     for c, t, q in zip(clips, y, p) if t != q]
    # shorter windows, as the element sees a track before it has T frames (min_frames..T)
    short = {}
    for L in (20, 50):
        wins = [dict(frames=tasks._centre(s["kp"], L), width=s["width"], height=s["height"])
                for s in test_items("penn")]
        q = pred.scores(wins).argmax(1)
        short[f"L{L}"] = round(float(np.mean(q == np.array(y))), 4)
    res["accuracy_centre_window"] = short
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help=".onnx (metadata gives labels and T) or a train.py checkpoint")
    ap.add_argument("--task", required=True, choices=sorted(tasks.TASKS))
    ap.add_argument("--out", help="folder for <name>_metrics.json and the confusion PNGs")
    ap.add_argument("--name", help="default: the model file's base name")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--split", default="test", choices=("test", "val", "val_plus_urfd"),
                    help="fall: the held-out test split (default), the validation subset, or "
                    "that plus every URFD window (for runs trained with --hold-out-source)")
    ap.add_argument("--fall-split", choices=sorted(data.FALL_SPLITS),
                    help="fall: which Le2i Home scenes are held out (data.FALL_SPLITS); default: "
                    "the model's own (ONNX metadata recognizer.fall_split, or the checkpoint's "
                    "train.py --fall-split)")
    a = ap.parse_args()
    pred = Predictor(a.model, a.threads)
    if a.task == "fall":
        a.fall_split = a.fall_split or pred.fall_split
        seen = set(data.FALL_SPLITS[a.fall_split]) - set(data.FALL_SPLITS[pred.fall_split])
        if seen:
            raise SystemExit(f"{a.model}: trained on {', '.join(sorted(seen))} (fall split "
                             f"{pred.fall_split!r}), which --fall-split {a.fall_split!r} tests on")
        data.set_fall_split(a.fall_split)
    name = a.name or os.path.splitext(os.path.basename(a.model))[0] + ("" if a.split == "test" else "_" + a.split)
    if a.task == "fall":
        res = {"T": eval_fall(pred, pred.T, a.split), "L20": eval_fall(pred, 20, a.split)}
        for key, r in res.items():
            print(f"[{key}] windows {r['n']} accuracy {r['accuracy']} fall P {r['fall_precision']} "
                  f"R {r['fall_recall']} F1 {r['fall_f1']} (95 % interval {r['fall_f1_95ci']}; "
                  f"tp {r['tp']} fp {r['fp']} fn {r['fn']})")
            for src, b in r["by_source"].items():
                print(f"    {src:7s} {b}")
    else:
        res = {"clips": eval_penn(pred)}
        r = res["clips"]
        print(f"clips {r['n']} top-1 {r['accuracy']} (first window only "
              f"{r['accuracy_first_window_only']}; centre windows {r['accuracy_centre_window']})")
        for k, v in r["per_class"].items():
            print(f"    {k:16s} {v}")
    doc = dict(model=os.path.basename(a.model), task=a.task, split=a.split,
               fall_split=a.fall_split if a.task == "fall" else None, labels=pred.labels, T=pred.T,
               command="python3 tools/stgcn/evaluate.py " + " ".join(sys.argv[1:]), results=res)
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, f"{name}_metrics.json"), "w") as fh:
            json.dump(doc, fh, indent=1)
            fh.write("\n")
        for key, r in res.items():
            suffix = "" if key in ("T", "clips") else f"_{key}"
            title = f"{name} " + (f"L={r['window_frames']}" if "window_frames" in r else "test clips")
            plot_confusion(r["confusion"], pred.labels, os.path.join(a.out, f"{name}_confusion{suffix}.png"), title)
    return doc


if __name__ == "__main__":
    main()

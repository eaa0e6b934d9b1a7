#!/usr/bin/env python3
"""Operating points of a fall model: the `min-score` an installer gives an `eventsink` rule
(`class=fall min-score=S`) for high recall, balanced or high precision, chosen on the
validation windows only, then reported on the held-out test windows for information.

    python3 tools/stgcn/operating_points.py models/fall_stgcnpp.onnx --out models

The rule, fixed before any sweep was looked at (2026-12-06):
- The score is the fall probability the element reports (softmax of the model's output:
  `scores.fall` in the metadata), on a grid S = 0.05, 0.10, ..., 0.95. A window counts as
  a fall when its fall score >= S.
- Windows: the validation windows of both lengths the element classifies (L = T = 48 and
  L = 20, pooled), from the validation subset of the training sources (data.FALL_VAL_*).
- balanced: the model's own decision, argmax (for two classes S = 0.5): what the element
  labels with no settings.
- high recall: the largest S whose validation fall recall is >= 0.98 (0.05 if none).
- high precision: the smallest S >= 0.5 with no false fall on validation (0.95 if none).

Writes <out>/<name>_operating_points.json and <out>/<name>_pr.png (precision-recall curves,
validation and test, with the three points marked).
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
from evaluate import Predictor, fall_classes, test_windows  # noqa: E402

GRID = [round(0.05 * k, 2) for k in range(1, 20)]


def fall_scores(pred, split):
    """(fall score, is-fall truth) of the pooled L = T and L = 20 windows of a split."""
    fall = fall_classes(pred.labels)
    scores, truth = [], []
    for L in (pred.T, 20):
        wins = test_windows("fall", pred.T, L, split)
        sc = pred.scores(wins)
        scores.append(sc[:, fall].sum(1))
        truth.append(fall[np.array([w["label"] for w in wins])])
    return np.concatenate(scores), np.concatenate(truth)


def at(scores, truth, s):
    p = scores >= s
    tp, fp, fn = int((p & truth).sum()), int((p & ~truth).sum()), int((~p & truth).sum())
    prec = tp / (tp + fp) if tp + fp else 1.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return dict(min_score=s, precision=round(prec, 4), recall=round(rec, 4), f1=round(f1, 4),
                tp=tp, fp=fp, fn=fn)


def choose(val):
    """The fixed rule of the module docstring, on the validation sweep `val` (S -> figures)."""
    recall_ok = [s for s in GRID if val[s]["recall"] >= 0.98]
    clean = [s for s in GRID if s >= 0.5 and val[s]["fp"] == 0]
    return {"high-recall": max(recall_ok) if recall_ok else GRID[0], "balanced": 0.5,
            "high-precision": min(clean) if clean else GRID[-1]}


def plot(curves, points, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 4), dpi=110)
    for name, sweep in curves.items():
        # a threshold no window reaches has no precision to show
        shown = [s for s in GRID if sweep[s]["tp"] + sweep[s]["fp"]]
        ax.plot([sweep[s]["recall"] for s in shown], [sweep[s]["precision"] for s in shown],
                marker=".", label=name)
        for point, s in points.items():
            ax.annotate(point, (sweep[s]["recall"], sweep[s]["precision"]), fontsize=7)
    ax.set_xlabel("fall recall")
    ax.set_ylabel("fall precision")
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="fall model (.onnx)")
    ap.add_argument("--out", help="folder for <name>_operating_points.json and <name>_pr.png")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    pred = Predictor(a.model, a.threads)
    data.set_fall_split(pred.fall_split)
    sweeps = {}
    for split in ("val", "test"):
        scores, truth = fall_scores(pred, split)
        sweeps[split] = {s: at(scores, truth, s) for s in GRID}
    points = choose(sweeps["val"])
    doc = dict(model=os.path.basename(a.model), fall_split=pred.fall_split,
               rule=__doc__.split("The rule")[1].split("Writes")[0].strip(),
               command="python3 tools/stgcn/operating_points.py " + " ".join(sys.argv[1:]),
               points={name: dict(min_score=s, validation=sweeps["val"][s], test=sweeps["test"][s])
                       for name, s in points.items()},
               sweep={split: [sweeps[split][s] for s in GRID] for split in sweeps})
    for name, p in doc["points"].items():
        v, t = p["validation"], p["test"]
        print(f"{name:15s} min-score {p['min_score']:.2f}  validation P {v['precision']} R {v['recall']}"
              f"  test P {t['precision']} R {t['recall']} F1 {t['f1']}")
    if a.out:
        name = os.path.splitext(os.path.basename(a.model))[0]
        with open(os.path.join(a.out, f"{name}_operating_points.json"), "w") as fh:
            json.dump(doc, fh, indent=1)
            fh.write("\n")
        plot({"validation": sweeps["val"], "test (held out)": sweeps["test"]}, points,
             os.path.join(a.out, f"{name}_pr.png"),
             f"{name}: fall windows L=48 and L=20 pooled, min-score 0.05..0.95")
    return doc


if __name__ == "__main__":
    main()

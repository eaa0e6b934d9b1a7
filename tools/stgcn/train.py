#!/usr/bin/env python3
"""Train an ST-GCN++ (tools/stgcn/model.py) on CPU for one task.

    nice -n 10 python3 tools/stgcn/train.py fall --steps 3000 --out out/stgcn/fall.pt
    nice -n 10 python3 tools/stgcn/train.py penn --steps 3000 --out out/stgcn/penn.pt

Windows are drawn at random from the training split (tasks.Sampler: random window length
min_frames..T, random crop and speed, flip, rotation, aspect, jitter, joint dropout, score
noise) and normalised exactly as the element does (preprocess.normalize_window). SGD with
Nesterov momentum, cosine learning rate, label smoothing. The checkpoint holds the weights and
everything export.py needs (labels, T, width, min_frames, ignored joints).
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import tasks  # noqa: E402
from model import STGCNPP  # noqa: E402


def train_items(task, hold_out_val=False, hold_out_source=False):
    if task == "penn":
        items, _ = data.load_penn()
        return [s for s in items if s["split"] == "train"]
    if hold_out_source:
        return data.fall_pools()[f"fit_minus_{data.FALL_UNSEEN_SOURCE}"]
    return data.fall_pools()["fit" if hold_out_val else "train"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task", choices=sorted(tasks.TASKS))
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--wd", type=float, default=5e-4)
    ap.add_argument("--width", default="tiny")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ignore-joints", help="comma-separated COCO indices the model zeroes "
                    "(default: the task's, tasks.py)")
    ap.add_argument("--hold-out-val", action="store_true",
                    help="fall: train without the validation subset (data.FALL_VAL_*), so that "
                    "runs and the decision threshold can be chosen on it (evaluate.py --split val)")
    ap.add_argument("--hold-out-source", action="store_true",
                    help="fall: also train without any window of data.FALL_UNSEEN_SOURCE (URFD), "
                    "to calibrate the decision threshold on a source the run never saw "
                    "(evaluate.py --split val_plus_urfd); implies --hold-out-val")
    ap.add_argument("--sit-falls", action="store_true",
                    help="fall: a third of the synthetic falls end sitting or kneeling on the "
                    "floor (tasks.synth_fall_sit) instead of lying")
    ap.add_argument("--fall-split", default=data.FALL_SPLIT_DEFAULT, choices=sorted(data.FALL_SPLITS),
                    help="fall: which Le2i Home scenes are held out for the test "
                    "(data.FALL_SPLITS); the others are trained on")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    data.set_fall_split(a.fall_split)
    if a.hold_out_source:
        a.hold_out_val = True

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    cfg = tasks.task_config(a.task)
    if a.ignore_joints is not None:
        cfg["ignore_joints"] = tuple(int(j) for j in a.ignore_joints.split(",") if j.strip())
    items = train_items(a.task, a.hold_out_val, a.hold_out_source)
    sampler = tasks.Sampler(a.task, items, seed=a.seed, sit_falls=a.sit_falls)
    model = STGCNPP(len(cfg["labels"]), width=a.width, ignore_joints=cfg["ignore_joints"],
                    features=cfg["features"])
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, nesterov=True,
                          weight_decay=a.wd)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=a.steps,
                                                pct_start=0.05, anneal_strategy="cos",
                                                div_factor=10, final_div_factor=100)
    crit = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    print(f"task {a.task}: {len(items)} training sequences, labels {cfg['labels']}, "
          f"T={cfg['T']}, params {sum(p.numel() for p in model.parameters())}", flush=True)
    t0 = time.time()
    log = []
    run_loss = run_acc = 0.0
    model.train()
    for step in range(1, a.steps + 1):
        x, y = sampler.batch(a.batch)
        x, y = torch.from_numpy(x), torch.from_numpy(y)
        logits = model(x)
        loss = crit(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        run_loss = 0.98 * run_loss + 0.02 * loss.item() if step > 1 else loss.item()
        acc = (logits.argmax(1) == y).float().mean().item()
        run_acc = 0.98 * run_acc + 0.02 * acc if step > 1 else acc
        if step % 50 == 0 or step == a.steps:
            el = time.time() - t0
            print(f"step {step}/{a.steps} loss {run_loss:.4f} acc {run_acc:.3f} "
                  f"lr {sched.get_last_lr()[0]:.4f} {el / 60:.1f} min", flush=True)
            log.append(dict(step=step, loss=run_loss, acc=run_acc, minutes=el / 60))
    elapsed = time.time() - t0
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    torch.save(dict(state_dict=model.state_dict(), task=a.task, labels=cfg["labels"],
                    T=cfg["T"], min_frames=cfg["min_frames"], width=a.width,
                    ignore_joints=list(cfg["ignore_joints"]), features=list(cfg["features"]),
                    args=vars(a), train_seconds=elapsed, log=log,
                    torch=torch.__version__, threads=a.threads), a.out)
    print(json.dumps(dict(out=a.out, train_minutes=round(elapsed / 60, 1))))


if __name__ == "__main__":
    main()

"""Recipe search for the short (CPU) profiles: train a teacher (and optionally a student) step by step on
a DATA spec and print, every few steps, the error on a validation split (held-out *training* clips) and on
the test split, scored the authors' way (teacher: input 2D lifted with its depth), beside the flat pose,
plus the spread of the canonical pose across inputs (a collapse shows as spread -> 0).

    python bench/recipe_search.py --data mocap:../shared/data/bandai/bandai_h36m17.npz --steps 600 \
        --optimizer sgd --lr 1e-3 --out bench/results/recipe_sgd.json

Writes one JSON record per evaluation; the recipe of config.PROFILE_SETTINGS was chosen with it
(docs/paper_vs_code.md, "The CPU recipe")."""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from itespy.config import make_config
from itespy.data import load_splits
from itespy.evaluate import canonical_spread, evaluate_flat_baseline, evaluate_model
from itespy.io import atomic_write_json
from itespy.models import build_student, build_teacher
from itespy.inference import teacher_depth_labels
from itespy.train import epoch_generator, make_optimizer, student_loss, teacher_loss


def _overrides(items) -> dict:
    """KEY=VALUE strings -> config overrides (JSON values; bare words stay strings)."""
    out = {}
    for item in items:
        key, value = item.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="synthetic")
    p.add_argument("--variant", default="paper")
    p.add_argument("--profile", default="tutorial")
    p.add_argument("--max-train", type=int)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--student-steps", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--set", nargs="*", default=[], help="config overrides KEY=VALUE (JSON values)")
    p.add_argument("--student-set", nargs="*", default=[], help="overrides for the student stage only")
    p.add_argument("--out")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    cfg = make_config(a.profile, a.variant, data=a.data, **_overrides(a.set))
    if a.max_train:
        cfg = cfg.replace(max_train=a.max_train)
    splits = load_splits(cfg.data, seed=cfg.seed, max_train=cfg.max_train, max_test=cfg.max_test)
    train, test = splits["train"], splits["test"]
    from itespy.data.validation import validation_split
    train, val = validation_split(train)
    flat = {k: evaluate_flat_baseline(s)["mpjpe_scaled_flip"]["mean"] for k, s in (("val", val), ("test", test))}
    print(json.dumps({"config": {k: v for k, v in cfg.to_dict().items() if k != "extra"}, "train": len(train),
                      "val": len(val), "test": len(test), "flat": flat}), flush=True)
    records = []
    torch.manual_seed(cfg.seed)
    model = build_teacher(cfg)
    x_all = torch.as_tensor(train.keypoints_2d)
    t0, step, epoch = time.perf_counter(), 0, 0

    def report(stage, m, extra):
        rec = {"stage": stage, "step": step, "seconds": round(time.perf_counter() - t0, 1), **extra}
        for name, s in (("val", val), ("test", test)):
            r = evaluate_model(m, s, protocols=("mpjpe_scaled_flip", "p_mpjpe_flip"))
            rec[name] = [round(r["mpjpe_scaled_flip"]["mean"], 1), round(r["p_mpjpe_flip"]["mean"], 1)]
        if stage == "teacher":
            rec["spread"] = round(canonical_spread(m, val.keypoints_2d[:1024]), 4)
        m.train()
        records.append(rec)
        print(json.dumps(rec), flush=True)

    def train_steps(stage, net, n_steps, labels=None):
        nonlocal step
        opt, sched = make_optimizer(cfg, net, stage)
        step, epoch = 0, 0
        while step < n_steps:
            gen = epoch_generator(cfg.seed, stage, epoch)
            for idx in torch.randperm(len(x_all), generator=gen).split(cfg.batch_size):
                if len(idx) < cfg.batch_size or step >= n_steps:
                    break
                net.train()
                losses = (teacher_loss(cfg, net, x_all[idx], gen, epoch) if stage == "teacher" else
                          student_loss(cfg, net, x_all[idx], labels[idx], gen))
                opt.zero_grad()
                losses["total"].backward()
                opt.step()
                step += 1
                if step % a.eval_every == 0:
                    report(stage, net, {k: round(float(v), 4) for k, v in losses.items()})
            sched.step()
            epoch += 1

    train_steps("teacher", model, a.steps)
    if a.student_steps:
        model.eval()
        labels = torch.as_tensor(teacher_depth_labels(model, train.keypoints_2d, "cpu"))
        cfg = cfg.replace(**_overrides(a.student_set))
        torch.manual_seed(cfg.seed + 2)
        t0 = time.perf_counter()
        train_steps("student", build_student(cfg), a.student_steps, labels)
    if a.out:
        atomic_write_json(a.out, {"args": vars(a), "flat": flat, "records": records})


if __name__ == "__main__":
    main()

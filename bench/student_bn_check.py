"""Why the student's validation curve jumps, and where it levels off (issue "ITES keeps learning", item 2).

Trains the profile's student from one fixed, trained teacher (as bench/student_check.py does) and scores it on
the validation clips every ``--every`` steps three ways:

* ``as_is``: as the kit's training loop does (batch-norm layers with their running statistics);
* ``bn``: the same weights with every batch-norm layer's statistics recomputed on ``--bn-batches`` batches of
  real training inputs (no cycle passes), a "precise BN" pass;
* ``ema_bn``: an exponential moving average of the weights (``--ema``), statistics recomputed as for ``bn``.

If ``as_is`` jumps where ``bn`` does not, the jumps are the running statistics (which trail weights that move
fast), not the weights. Where ``bn`` and ``ema_bn`` level off is the student's plateau at this budget.

    python bench/student_bn_check.py runs/tutorial7/cache/teacher-... bench/results/long/student_bn_seed0.json \\
        --overrides '{"student_lr": 0.001}'

``--plot OUT.png A.json [B.json ...]`` draws the validation MPJPE of each file's three columns against the step.

``--freeze-cycle-bn``: L_REC's second pass normalises with its own batch statistics but leaves the running ones
alone (momentum 0 during that pass), to see whether the cycle's passes cause the jumps."""
from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch
from records import precise_bn, teacher_run  # bench/records.py (scripts run as python bench/NAME.py)

from itespy import losses, train
from itespy.checkpoints import load_model
from itespy.data.validation import validation_split
from itespy.evaluate import make_validator
from itespy.inference import teacher_depth_labels
from itespy.io import atomic_write_json
from itespy.models import build_student
from itespy.runfolder import RunFolder

BN_BATCHES = 30  # batches of real inputs that recompute the statistics
EMA_DECAY = 0.99


def batch_norms(model: torch.nn.Module) -> list:
    return [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


def ema_update(average: torch.nn.Module, model: torch.nn.Module, decay: float = EMA_DECAY) -> None:
    """average <- decay * average + (1 - decay) * model, parameter by parameter."""
    with torch.no_grad():
        for pa, pm in zip(average.parameters(), model.parameters()):
            pa.mul_(decay).add_(pm, alpha=1 - decay)


def cycle_without_running_stats(loss_fn):
    """L_REC whose second pass leaves the batch-norm running statistics alone."""
    def patched(student, *args, **kwargs):
        norms = batch_norms(student)
        saved = [m.momentum for m in norms]
        for m in norms:
            m.momentum = 0.0
        try:
            return loss_fn(student, *args, **kwargs)
        finally:
            for m, momentum in zip(norms, saved):
                m.momentum = momentum
    return patched


COLUMNS = {"as_is": "as trained (running statistics)", "bn": "statistics recomputed",
           "ema_bn": "weight average, statistics recomputed"}


def plot(out: str, paths: list) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    if not paths:
        raise ValueError("--plot: expected at least one JSON file written by this script")
    fig, axes = plt.subplots(1, len(paths), figsize=(5.5 * len(paths), 3.8), squeeze=False, sharey=True)
    for ax, path in zip(axes[0], paths):
        record = json.loads(Path(path).read_text())
        for key, label in COLUMNS.items():
            ax.plot([c["step"] for c in record["checks"]], [c[key]["mpjpe"] for c in record["checks"]], label=label)
        title = f"student lr {record['student_lr']:g}" + (", cycle out of the statistics" if record["freeze_cycle_bn"]
                                                          else "")
        if record.get("teacher_val_mpjpe"):
            ax.axhline(record["teacher_val_mpjpe"], color="grey", ls=":", label="its teacher (kept checkpoint)")
        ax.set(xlabel="student step", title=title)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("validation MPJPE (mm, scaled, mirror)")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def main(argv=None):
    import sys
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--plot":
        if len(argv) < 2:
            raise SystemExit("usage: student_bn_check.py --plot OUT.png A.json [B.json ...]")
        return plot(argv[1], argv[2:])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("teacher_dir")
    p.add_argument("out", help="JSON file for the checks")
    p.add_argument("--overrides", default="{}", help="config overrides of the student (JSON)")
    p.add_argument("--every", type=int, default=50, help="steps between checks")
    p.add_argument("--ema", type=float, default=EMA_DECAY)
    p.add_argument("--bn-batches", type=int, default=BN_BATCHES)
    p.add_argument("--freeze-cycle-bn", action="store_true")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    overrides = json.loads(a.overrides)
    cfg, splits = teacher_run(Path(a.teacher_dir))
    cfg = cfg.replace(**overrides).validate()
    if a.freeze_cycle_bn:
        train.rotation_equivariance_loss = cycle_without_running_stats(losses.rotation_equivariance_loss)
    train_set, val_set = validation_split(splits["train"])
    validate = make_validator(val_set, cfg, "cpu")
    teacher, _ = load_model(Path(a.teacher_dir) / "teacher.pt", "teacher")
    x_all = torch.as_tensor(train_set.keypoints_2d, dtype=torch.float32)
    y_all = torch.as_tensor(teacher_depth_labels(teacher, train_set.keypoints_2d, "cpu", cfg.eval_batch_size,
                                                 cfg.kd_target))
    torch.manual_seed(cfg.seed + train.STAGE_SEED_OFFSET["student"])
    student = build_student(cfg)
    average = copy.deepcopy(student)
    opt, sched = train.make_optimizer(cfg, student, "student")
    checks, step, t0 = [], 0, time.time()
    for epoch in range(cfg.student_epochs):
        student.train()
        gen = train.epoch_generator(cfg.seed, "student", epoch)
        for idx in list(train._batches(len(x_all), cfg.batch_size, gen)):
            loss = train.student_loss(cfg, student, x_all[idx], y_all[idx], gen)["total"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            ema_update(average, student, a.ema)
            step += 1
            if step % a.every == 0:
                row = {"step": step, "as_is": validate(student)}
                student.train()
                row["bn"] = validate(precise_bn(student, x_all, cfg.batch_size, a.bn_batches))
                row["ema_bn"] = validate(precise_bn(average, x_all, cfg.batch_size, a.bn_batches))
                checks.append(row)
                print(step, *(f"{row[k]['mpjpe']:.1f}/{row[k]['p_mpjpe']:.1f}" for k in ("as_is", "bn", "ema_bn")),
                      flush=True)
        sched.step()
    kept = RunFolder(a.teacher_dir).history("teacher")[-1].get("kept", {})
    atomic_write_json(a.out, {"teacher_dir": str(a.teacher_dir), "overrides": overrides,
                              "teacher_val_mpjpe": kept.get("best_val_mpjpe"),
                              "freeze_cycle_bn": a.freeze_cycle_bn, "ema": a.ema, "bn_batches": a.bn_batches,
                              "student_lr": cfg.student_lr or cfg.lr, "seconds": round(time.time() - t0),
                              "checks": checks})


if __name__ == "__main__":
    main()

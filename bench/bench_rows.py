"""Device-hours of the paper profile, per table and in all (a benchmark, not a test): prints and saves JSON.

For every training the paper-profile reproduction needs (``itespy.reproduce.scheduler.plan`` over all rows of all
tables: each distinct teacher once, each distinct student once), it times a few optimisation steps of that
exact configuration on ``--device`` with random inputs of the right shape (compute does not depend on the
values), and multiplies by the number of steps of the profile:
``ceil(train poses / batch) x epochs``. Evaluation and data loading are not counted (minutes per row).

On a CPU-only machine it also *estimates* GPU time from two counts taken on the CPU, per step:
floating-point operations (``torch.utils.flop_counter``) and dispatched kernels (every aten op, forward,
backward and optimiser). GPU seconds per step ~= max(FLOPs / ASSUMED_GPU_FLOPS, kernels x
ASSUMED_LAUNCH_S): small networks like these are bound by kernel launches, not arithmetic. Both constants
are assumptions, printed beside the result; run this script with ``--device cuda`` for measured figures.

    python bench/bench_rows.py [--device auto] [--profile paper] [--train-poses 1559752] [--steps 5]
"""
from __future__ import annotations

import argparse
import math
import platform
import tempfile
import time
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from itespy import experiments as ex
from itespy.reproduce import scheduler as sch
from itespy.config import Config
from itespy.io import atomic_write_json
from itespy.models import build_student, build_teacher
from itespy.devices import resolve_device
from itespy.train import epoch_generator, make_optimizer, student_loss, teacher_loss

H36M_TRAIN_POSES = 1_559_752  # Human3.6M S1, S5, S6, S7, S8, 4 cameras, every frame (the paper's training set)
ASSUMED_GPU_FLOPS = 20e12  # sustained fp32 FLOP/s of a current data-centre GPU on these small matmuls (assumption)
ASSUMED_LAUNCH_S = 10e-6  # seconds per dispatched kernel, launch-bound regime (assumption)
STUDENT_FIELDS = ("student", "graph", "student_channels", "student_blocks", "use_kd", "use_rec", "cycle_copies",
                  "batch_size")
TEACHER_FIELDS = ("teacher", "teacher_trunk", "teacher_hidden", "teacher_bottleneck", "teacher_blocks",
                  "num_atoms", "use_ric", "use_rep", "cycle_copies", "batch_size", "dictionary_bias",
                  "extra_bottleneck")


class _CountOps(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.n = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.n += 1
        return func(*args, **(kwargs or {}))


def _step_fn(cfg: Config, stage: str, device):
    torch.manual_seed(0)
    model = (build_teacher(cfg) if stage == "teacher" else build_student(cfg)).to(device).train()
    opt, _ = make_optimizer(cfg, model)
    gen = epoch_generator(0, stage, 0)
    x = (0.1 * torch.randn(cfg.batch_size, 17, 2, generator=gen)).to(device)
    depth = (0.1 * torch.randn(cfg.batch_size, 17, generator=gen)).to(device) if cfg.use_kd else None

    def step():
        losses = teacher_loss(cfg, model, x, gen, 0) if stage == "teacher" else student_loss(cfg, model, x, depth, gen)
        opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        opt.step()
        return float(losses["total"].detach())  # the training loop syncs once per step too
    return step


def measure(cfg: Config, stage: str, device, steps: int) -> dict:
    step = _step_fn(cfg, stage, device)
    step()
    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - t0) / steps
    result = {"seconds_per_step": seconds}
    if device.type == "cpu":
        flops, ops = FlopCounterMode(display=False), _CountOps()
        with flops, ops:
            step()
        result.update(flops=flops.get_total_flops(), kernels=ops.n)
        result["gpu_seconds_per_step_estimate"] = max(result["flops"] / ASSUMED_GPU_FLOPS, ops.n * ASSUMED_LAUNCH_S)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--variant", default="paper")
    parser.add_argument("--train-poses", type=int, default=H36M_TRAIN_POSES)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    items = [(t, r, 0) for t in ex.TABLE_IDS for r in ex.get_table(t).row_ids]
    with tempfile.TemporaryDirectory() as tmp:
        settings = sch.row_settings(args.profile, "h36m:/path/to/h36m", args.device, tmp, variant=args.variant)
        tasks = sch.plan(items, settings)

    def cfg_of(row):
        t, r, seed = row
        return ex.row_config(t, r, args.profile, settings["data"], seed, args.device, args.variant)

    cache, trainings = {}, {}
    for task in tasks:
        cfg = cfg_of(task.teacher_of or task.rows[0])
        stage = "teacher" if task.teacher_of else "student"
        fields = TEACHER_FIELDS if stage == "teacher" else STUDENT_FIELDS
        sig = (stage,) + tuple(getattr(cfg, f) for f in fields)
        if sig not in cache:
            cache[sig] = measure(cfg, stage, device, args.steps)
            print(f"{stage:8s} {dict(zip(fields, sig[1:]))}: {cache[sig]['seconds_per_step'] * 1000:.1f} ms/step")
        epochs = cfg.teacher_epochs if stage == "teacher" else cfg.student_epochs
        n_steps = math.ceil(args.train_poses / cfg.batch_size) * epochs
        m = cache[sig]
        trainings[task.id] = {"stage": stage, "rows": [f"{t}:{r}" for t, r, _ in task.rows], "needs": list(task.needs),
                              "steps": n_steps, "hours": n_steps * m["seconds_per_step"] / 3600,
                              **({"gpu_hours_estimate": n_steps * m["gpu_seconds_per_step_estimate"] / 3600}
                                 if "gpu_seconds_per_step_estimate" in m else {})}

    def table_cost(table_id):
        """A table run alone: every training its rows need, teachers included, each once."""
        need = set()
        for tid, tr in trainings.items():
            if any(r.startswith(f"{table_id}:") for r in tr["rows"]):
                need.add(tid)
                need.update(tr["needs"])
        return {k: sum(trainings[t].get(k, 0.0) for t in need) for k in ("hours", "gpu_hours_estimate")} | \
            {"trainings": len(need)}

    tables = {t: table_cost(t) for t in ex.TABLE_IDS}
    total = {k: sum(tr.get(k, 0.0) for tr in trainings.values()) for k in ("hours", "gpu_hours_estimate")}
    result = {"device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
              else platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(),
              "profile": args.profile, "variant": args.variant, "train_poses": args.train_poses,
              "steps_timed": args.steps, "torch": torch.__version__, "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "assumptions": None if device.type != "cpu" else {
                  "gpu_flops_per_s": ASSUMED_GPU_FLOPS, "launch_seconds_per_kernel": ASSUMED_LAUNCH_S},
              "trainings": trainings, "tables": tables, "all_tables": {**total, "trainings": len(trainings)}}
    what = "GPU" if device.type == "cuda" else "CPU"
    print(f"\n{'table':6s} {'trainings':>9s} {what + '-hours':>11s}" + ("  GPU-hours (estimate)" if device.type == "cpu"
                                                                        else ""))
    for t, c in list(tables.items()) + [("all", result["all_tables"])]:
        print(f"{t:6s} {c['trainings']:9d} {c['hours']:11.1f}"
              + (f"  {c['gpu_hours_estimate']:8.1f}" if device.type == "cpu" else ""))
    out = Path(args.out) / f"rows_{args.profile}_{device.type}.json"
    atomic_write_json(out, result)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

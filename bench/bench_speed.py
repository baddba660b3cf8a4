"""Speed and size benchmark (not a test): prints and saves figures as JSON.

Measures, on CPU and on CUDA when present:
* teacher and student training steps/s at batch 128 with the paper's 4 cycle copies, for the kit's
  vectorised cycles and for a straightforward per-sample loop over the rotated copies (the ratio is the
  point: both are measured in the same run, on the same machine);
* inference latency at batch 1 and throughput at batch 1024;
* parameter counts beside the paper's Table 9 (ITES-TS 7.27 M parameters, 0.28 ms per pose on a GTX 1080 Ti).

    python bench/bench_speed.py [--device auto] [--steps 5] [--out bench/results]
"""
from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from itespy.config import make_config
from itespy.geometry import perspective_project, rotate
from itespy.io import atomic_write_json
from itespy.losses import (pose_distance, reprojection_loss, rotation_equivariance_loss, rotation_invariance_loss,
                           sample_rotations)
from itespy.models import build_student, build_teacher, count_parameters
from itespy.devices import resolve_device

PAPER_TABLE9 = {"C3DPO": {"params_M": 0.53, "ms": 0.17}, "ITES-TS": {"params_M": 7.27, "ms": 0.28}}
BATCH = 128


def _loop_ric(teacher, canonical, copies, gen):
    """Per-sample loop (each pose's rotated copies as one small batch): a direct transcription of Eq. 3."""
    total = 0.0
    for i in range(canonical.shape[0]):
        r = sample_rotations(copies, "haar", gen, canonical)
        target = canonical[i:i + 1].expand(copies, -1, -1)
        total = total + pose_distance(teacher(perspective_project(rotate(target, r)))["canonical"], target)
    return total / canonical.shape[0]


def _loop_rec(student, pose, copies, gen):
    """Per-sample loop for Eq. 7."""
    total = 0.0
    for i in range(pose.shape[0]):
        r = sample_rotations(copies, "haar", gen, pose)
        rotated = rotate(pose[i:i + 1].expand(copies, -1, -1), r)
        total = total + pose_distance(student(perspective_project(rotated))["pose_3d"], rotated)
    return total / pose.shape[0]


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _steps_per_second(step, steps, device):
    step()  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return steps / (time.perf_counter() - t0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--loop-steps", type=int, default=1, help="steps timed for the slow per-sample loop")
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    cfg = make_config("paper")
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(BATCH, 17, 2, generator=gen) * 0.1).to(device)
    teacher, student = build_teacher(cfg).to(device), build_student(cfg).to(device)
    opt_t = torch.optim.SGD(teacher.parameters(), lr=1e-3)
    opt_s = torch.optim.SGD(student.parameters(), lr=1e-3)
    copies = cfg.cycle_copies

    def teacher_step(loop=False):
        out = teacher(x)
        ric = (_loop_ric(teacher, out["canonical"], copies, gen) if loop
               else rotation_invariance_loss(teacher, out["canonical"], copies, "haar", gen))
        loss = 5 * reprojection_loss(out["pose_3d"], x) + ric
        opt_t.zero_grad()
        loss.backward()
        opt_t.step()

    def student_step(loop=False):
        out = student(x)
        rec = (_loop_rec(student, out["pose_3d"], copies, gen) if loop
               else rotation_equivariance_loss(student, out["pose_3d"], copies, "haar", gen))
        loss = 5 * out["depth"].pow(2).mean() + rec
        opt_s.zero_grad()
        loss.backward()
        opt_s.step()

    result = {"device": str(device), "torch": torch.__version__, "python": platform.python_version(),
              "threads": torch.get_num_threads(), "batch": BATCH, "cycle_copies": copies,
              "machine": platform.machine()}
    result["teacher_steps_per_s"] = _steps_per_second(teacher_step, args.steps, device)
    result["student_steps_per_s"] = _steps_per_second(student_step, args.steps, device)
    result["teacher_loop_steps_per_s"] = _steps_per_second(lambda: teacher_step(True), args.loop_steps, device)
    result["student_loop_steps_per_s"] = _steps_per_second(lambda: student_step(True), args.loop_steps, device)
    result["teacher_speedup_vs_loop"] = result["teacher_steps_per_s"] / result["teacher_loop_steps_per_s"]
    result["student_speedup_vs_loop"] = result["student_steps_per_s"] / result["student_loop_steps_per_s"]

    teacher.eval(), student.eval()
    with torch.no_grad():
        one, many = x[:1], (torch.randn(1024, 17, 2, generator=gen) * 0.1).to(device)
        pipeline = lambda inp: student(inp)  # ITES-TS at test time is the student alone
        result["student_latency_ms_batch1"] = 1000 / _steps_per_second(lambda: pipeline(one), 50, device)
        result["student_throughput_poses_per_s_batch1024"] = 1024 * _steps_per_second(lambda: pipeline(many), 5, device)
        result["teacher_latency_ms_batch1"] = 1000 / _steps_per_second(lambda: teacher(one), 50, device)
    result["params"] = {"teacher": count_parameters(teacher), "student": count_parameters(student),
                        "teacher+student": count_parameters(teacher) + count_parameters(student),
                        "reference_teacher": count_parameters(build_teacher(make_config("paper", "reference"))),
                        "reference_student": count_parameters(build_student(make_config("paper", "reference")))}
    result["paper_table9"] = PAPER_TABLE9
    for k, v in result.items():
        print(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}")
    path = atomic_write_json(Path(args.out) / f"speed_{device.type}.json", result)
    print(f"saved {path}")
    return result


if __name__ == "__main__":
    main()

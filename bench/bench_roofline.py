"""Training steps against the machine's roofline (issue 15; a benchmark, not a test): prints and saves JSON.

In one run, on one device and thread count:
* the roofline: a large fp32 matmul (2048 x 2048 by default), in GFLOP/s;
* for the teacher and the student of both variants (paper and reference), at the paper's sizes, batch 128 and
  4 cycle copies: the FLOPs of one training step (forward + backward, counted by
  ``torch.utils.flop_counter.FlopCounterMode``), its median wall time and the achieved GFLOP/s as a fraction of
  the roofline;
* inference (:func:`itespy.inference.predict`): batch-1 latency and batch-1024 throughput of each network.

Compare fractions of the roofline measured in the same run, never raw times across machines or days.

    python bench/bench_roofline.py [--device auto] [--threads 2] [--steps 10] [--out bench/results]
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from itespy.config import make_config
from itespy.devices import resolve_device
from itespy.io import atomic_write_json
from itespy.models import build_student, build_teacher, count_parameters
from itespy.skeleton import NUM_JOINTS
from itespy.train import make_optimizer, student_loss, teacher_loss

BATCH = 128
MATMUL_N = 2048
LATENCY_REPEATS = 100
THROUGHPUT_BATCH = 1024


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_seconds(fn, device, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def roofline_gflops(device, n: int = MATMUL_N, repeats: int = 10) -> float:
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    return 2 * n ** 3 / _median_seconds(lambda: a @ b, device, repeats, warmup=10) / 1e9


def _inputs(device, batch: int, generator) -> torch.Tensor:
    """Model-space-like 2D poses: root at 0, joints within about ±0.3 (the scale of the kit's normalisation)."""
    x = 0.1 * torch.randn(batch, NUM_JOINTS, 2, generator=generator)
    x[:, 0] = 0.0
    return x.to(device)


def step_figures(cfg, stage: str, device, steps: int) -> dict:
    """One training step's FLOPs, median time and time by operator category (fractions: :func:`fractions`)."""
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = (build_teacher(cfg) if stage == "teacher" else build_student(cfg)).to(device).train()
    opt, _ = make_optimizer(cfg, model, stage)
    x = _inputs(device, BATCH, gen)
    labels = 0.05 * torch.randn(BATCH, NUM_JOINTS, generator=gen).to(device)

    def step():
        losses = (teacher_loss(cfg, model, x, gen, 0) if stage == "teacher"
                  else student_loss(cfg, model, x, labels, gen))
        opt.zero_grad()
        losses["total"].backward()
        opt.step()

    def count_flops(readable: bool) -> int:
        state = {k: v.clone() for k, v in model.state_dict().items()}
        fast = [(m, m.use_fast_path) for m in model.modules() if hasattr(m, "use_fast_path")]
        for m, _ in fast:
            m.use_fast_path = not readable and m.use_fast_path
        with FlopCounterMode(display=False) as counter:
            step()
        for m, was in fast:
            m.use_fast_path = was
        model.load_state_dict(state)
        return counter.get_total_flops()

    # Model FLOPs: the step as the readable modules compute it (the network as the paper writes it); executed
    # FLOPs: what the fast path (models.fused) actually runs, fewer where it composes maps. The fraction of
    # the roofline is model FLOPs per second (the usual "model FLOPs utilisation"); both are saved.
    flops, executed = count_flops(readable=True), count_flops(readable=False)
    seconds = _median_seconds(step, device, steps)
    parts = time_by_category(step, device)
    matmul = parts["matmul"] / sum(parts.values())  # share of the step's operator time
    return {"stage": stage, "params": count_parameters(model), "gflop_per_step": round(flops / 1e9, 2),
            "executed_gflop_per_step": round(executed / 1e9, 2),
            "seconds_per_step": round(seconds, 4), "steps_per_s": round(1 / seconds, 2),
            "ms_by_category": {k: round(v * 1e3, 2) for k, v in parts.items()},
            "matmul_share_of_step": round(matmul, 3), "_raw": (flops, executed, seconds, matmul * seconds)}


def fractions(fig: dict, roofline: float) -> dict:
    """The step's figures against the roofline (GFLOP/s): achieved fraction (model and executed FLOPs), the
    matmul-only ceilings, and the step time the issue's target asks for with what it leaves beside the products."""
    flops, executed, seconds, matmul_seconds = fig.pop("_raw")
    budget = flops / (TARGET_FRACTION[fig["stage"]] * roofline * 1e9)  # the step time the target asks for
    return {**fig, "gflops": round(flops / seconds / 1e9, 1),
            "fraction_of_roofline": round(flops / seconds / 1e9 / roofline, 3),
            "executed_fraction_of_roofline": round(executed / seconds / 1e9 / roofline, 3),
            # if everything but the matrix products took no time at all (model FLOPs; executed FLOPs):
            "matmul_only_fraction_of_roofline": round(flops / matmul_seconds / 1e9 / roofline, 3),
            "matmul_only_executed_fraction_of_roofline": round(executed / matmul_seconds / 1e9 / roofline, 3),
            # the target's step time, and what it leaves for everything but the products at their measured speed
            "target_fraction": TARGET_FRACTION[fig["stage"]], "target_ms_per_step": round(budget * 1e3, 2),
            "target_ms_left_after_matmuls": round((budget - matmul_seconds) * 1e3, 2)}


# Operator categories of the time breakdown (aten names, without the "aten::"/"aten." prefix and overload).
CATEGORIES = {
    "matmul": {"mm", "addmm", "bmm", "baddbmm", "mv", "addmv", "dot"},
    "batch_norm": {"native_batch_norm", "native_batch_norm_backward", "_native_batch_norm_legit",
                   "_native_batch_norm_legit_no_training", "_batch_norm_with_update", "batch_norm_backward"},
    "copies": {"cat", "copy_", "clone", "_to_copy", "index_select", "index_add", "index_copy_", "gather",
               "scatter_add", "new_zeros", "zeros", "zero_", "fill_"},
}
# What each network is asked to reach (issue 15): teachers 75 %, students 60 % of the roofline.
TARGET_FRACTION = {"teacher": 0.75, "student": 0.60}


def _category(op_name: str) -> str:
    base = op_name.split("::")[-1].split(".")[0]  # "aten::add.Tensor" -> "add"
    return next((c for c, ops in CATEGORIES.items() if base in ops), "other")


def time_by_category(step, device, repeats: int = 3) -> dict:
    """Seconds per step spent in each operator category (CATEGORIES; the rest is "other").

    On CPU every aten call is timed where it is dispatched (execution is synchronous, so these times add up
    to the step; the profiler's self times did not: it charged some products 2-3x their wall time). On CUDA,
    the profiler's device time per kernel."""
    totals = dict.fromkeys([*CATEGORIES, "other"], 0.0)
    if device.type == "cuda":
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(repeats):
                step()
            _sync(device)
        for e in prof.key_averages():
            if e.key.startswith("aten::"):
                totals[_category(e.key)] += e.self_device_time_total / 1e6
    else:
        from torch.utils._python_dispatch import TorchDispatchMode

        class Timer(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                start = time.perf_counter()
                out = func(*args, **(kwargs or {}))
                totals[_category(func.name())] += time.perf_counter() - start
                return out

        step()  # warm, untimed
        with Timer():
            for _ in range(repeats):
                step()
    return {k: v / repeats for k, v in totals.items()}


def inference_figures(model, device) -> dict:
    gen = torch.Generator().manual_seed(1)
    model = model.to(device).eval()
    one, many = _inputs(device, 1, gen), _inputs(device, THROUGHPUT_BATCH, gen)
    with torch.no_grad():
        latency = _median_seconds(lambda: model(one), device, LATENCY_REPEATS)
        batch_s = _median_seconds(lambda: model(many), device, 10)
    return {"batch1_ms": round(latency * 1e3, 3), "batch1024_poses_per_s": round(THROUGHPUT_BATCH / batch_s)}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--steps", type=int, default=10, help="timed training steps per network")
    p.add_argument("--out", default="bench/results")
    p.add_argument("--tag", default="", help="suffix of the JSON file name, e.g. 1thread")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    device = resolve_device(a.device)
    roofline = roofline_gflops(device)
    print(f"roofline ({MATMUL_N}² fp32 matmul, {device}, {torch.get_num_threads()} threads): {roofline:.1f} GFLOP/s")
    results = {"device": str(device), "threads": torch.get_num_threads(), "torch": torch.__version__,
               "machine": platform.machine(), "processor": platform.processor(), "batch": BATCH,
               "roofline_gflops": round(roofline, 1), "networks": {}}
    figures = {}
    for variant in ("paper", "reference"):
        cfg = make_config("paper", variant, device=str(device), batch_size=BATCH, cycle_copies=4)
        for stage in ("teacher", "student"):
            fig = step_figures(cfg, stage, device, a.steps)
            torch.manual_seed(0)
            fig.update(inference_figures(build_teacher(cfg) if stage == "teacher" else build_student(cfg), device))
            figures[f"{variant}/{stage}"] = fig
    # Re-measure the roofline at the end: the spread says how steady the machine was during the run. Fractions
    # use the higher of the two (the first product of a run can be slow while the cores clock up).
    results["roofline_gflops_after"] = round(roofline_gflops(device), 1)
    best = max(roofline, results["roofline_gflops_after"])
    results["roofline_gflops_used"] = round(best, 1)
    for name, fig in figures.items():
        fig = results["networks"][name] = fractions(fig, best)
        print(f"{name:17s} {fig['gflop_per_step']:6.1f} GFLOP/step {fig['steps_per_s']:6.2f} steps/s "
              f"{fig['gflops']:6.1f} GFLOP/s = {fig['fraction_of_roofline']:.0%} of roofline; "
              f"batch 1 {fig['batch1_ms']:.2f} ms, batch {THROUGHPUT_BATCH} {fig['batch1024_poses_per_s']} poses/s")
    print(f"roofline at the end {results['roofline_gflops_after']:.1f} GFLOP/s; fractions against {best:.1f}")
    path = Path(a.out) / f"roofline_{device.type}{'_' + a.tag if a.tag else ''}.json"
    atomic_write_json(path, results)
    print(f"saved {path}")
    return results


if __name__ == "__main__":
    main()

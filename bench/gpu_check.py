"""The GPU path in one prepared command (issue "The GPU path, proven"): every figure into one folder as JSON.

    python bench/gpu_check.py --device cuda --out bench/results/gpu_check      # one GPU, <= 8 min
    python bench/gpu_check.py --device cpu --small --out /tmp/gpu_check        # the CPU form CI runs

Steps, each timed and recorded even when it fails (``check.json`` is rewritten after every step, so a cut run
keeps what it measured):

1. ``environment``: torch, the device's name, memory and compute capability;
2. ``tests``: ``pytest -m cuda`` (tests/test_cuda.py; on the CPU they skip, and the CPU cases run instead);
3. ``roofline``: bench/bench_roofline.py on the device (achieved FLOP/s of each network's training step against
   a large matmul in the same run, batch-1 latency);
4. ``steps``: training steps per second of the paper profile's teacher and student at batch 128 (and larger
   batches on a GPU), plain and with ``torch.compile`` (GPU only), with peak GPU memory; from them the paper
   profile's hours for one teacher + student training on Human3.6M;
5. ``notebooks``: chapters 00, 03 and 04 executed by papermill with ``device`` at the smoke profile (--small: 00).
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from itespy.config import make_config  # noqa: E402
from itespy.devices import resolve_device  # noqa: E402
from itespy.io import atomic_write_json  # noqa: E402
from itespy.models import build_student, build_teacher  # noqa: E402
from itespy.train import make_optimizer, student_loss, teacher_loss  # noqa: E402

PAPER_BATCH = 128
H36M_TRAIN_POSES = 293_116  # the authors' training set: S1, S5-S8, every frame of four cameras subsampled
PAPER_EPOCHS = {"teacher": 40, "student": 30}


def environment(device) -> dict:
    info = {"torch": torch.__version__, "python": platform.python_version(), "device": str(device),
            "cuda": torch.version.cuda, "threads": torch.get_num_threads()}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        info.update(name=p.name, memory_gib=round(p.total_memory / 2**30, 1), capability=f"{p.major}.{p.minor}")
    else:
        info["name"] = platform.processor() or platform.machine()
    return info


def run_tests(device, out: Path) -> dict:
    marker = "cuda" if device.type == "cuda" else "not cuda"
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", marker,
                        "tests/test_cuda.py", f"--junitxml={out / 'tests.xml'}"], cwd=REPO, capture_output=True,
                       text=True, timeout=600)
    return {"marker": marker, "returncode": r.returncode, "summary": (r.stdout.strip().splitlines() or [""])[-1]}


def run_roofline(device, out: Path, steps: int) -> dict:
    r = subprocess.run([sys.executable, "bench/bench_roofline.py", "--device", str(device), "--steps", str(steps),
                        "--out", str(out), "--tag", "gpu_check"], cwd=REPO, capture_output=True, text=True,
                       timeout=600)
    found = sorted(out.glob("roofline*gpu_check*.json"))
    return {"returncode": r.returncode, "json": found[-1].name if found else None,
            "tail": "\n".join(r.stdout.strip().splitlines()[-8:])}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def steps_per_second(stage: str, device, batch: int, steps: int, compiled: bool) -> dict:
    """Median-free timing of ``steps`` training steps after 3 warm-up steps (compile happens in warm-up)."""
    cfg = make_config("paper", "paper", device=str(device), batch_size=batch)
    torch.manual_seed(0)
    net = (build_teacher(cfg) if stage == "teacher" else build_student(cfg)).to(device).train()
    opt, _ = make_optimizer(cfg, net, stage)
    model = torch.compile(net) if compiled else net
    gen = torch.Generator(device=device).manual_seed(0)
    x = 0.1 * torch.randn(batch, 17, 2, device=device)
    depth = 0.1 * torch.randn(batch, 17, device=device)

    def step():
        loss = (teacher_loss(cfg, model, x, gen, epoch=0) if stage == "teacher"
                else student_loss(cfg, model, x, depth, gen))
        opt.zero_grad(set_to_none=True)
        loss["total"].backward()
        opt.step()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(3):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    sps = steps / (time.perf_counter() - t0)
    fig = {"stage": stage, "batch": batch, "compiled": compiled, "steps_per_s": round(sps, 2),
           "poses_per_s": round(sps * batch)}
    if device.type == "cuda":
        fig["peak_memory_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return fig


def paper_hours(figures: list) -> dict:
    """Hours of one paper-profile training (teacher 40 + student 30 epochs on Human3.6M at batch 128), from the
    measured steps per second of the plain (uncompiled) paper-batch steps."""
    steps_per_epoch = -(-H36M_TRAIN_POSES // PAPER_BATCH)
    out = {}
    for stage, epochs in PAPER_EPOCHS.items():
        got = [f for f in figures if f["stage"] == stage and f["batch"] == PAPER_BATCH and not f["compiled"]
               and "steps_per_s" in f]
        if got:
            out[stage] = round(steps_per_epoch * epochs / got[0]["steps_per_s"] / 3600, 2)
    if len(out) == 2:
        out["one_training"] = round(out["teacher"] + out["student"], 2)
    out["steps_per_epoch"] = steps_per_epoch
    return out


def run_notebooks(device, out: Path, stems: list) -> list:
    import papermill as pm
    done = []
    for stem in stems:
        t0 = time.time()
        try:
            pm.execute_notebook(str(REPO / "notebooks" / f"{stem}.ipynb"), str(out / f"{stem}.ipynb"),
                                parameters={"device": str(device), "profile": "smoke",
                                            "out_dir": str(out / "runs" / stem),
                                            "figures_dir": str(out / "figures" / stem),
                                            **({"teacher_run": str(out / "runs" / "03_teacher")}
                                               if stem == "04_student" else {})},
                                cwd=str(REPO / "notebooks"), progress_bar=False, kernel_name="python3")
            done.append({"notebook": stem, "status": "ok", "seconds": round(time.time() - t0, 1)})
        except Exception as exc:  # noqa: BLE001 -- recorded, the other notebooks still run
            done.append({"notebook": stem, "status": "failed", "error": str(exc).splitlines()[0][:300],
                         "seconds": round(time.time() - t0, 1)})
    return done


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--small", action="store_true", help="the CPU form: fewer steps, one batch, chapter 00 only")
    p.add_argument("--out", default="bench/results/gpu_check")
    a = p.parse_args(argv)
    device = resolve_device(a.device)
    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    report = {"command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "steps": {}}

    def record(name, fn):
        t0 = time.time()
        try:
            report["steps"][name] = {"status": "ok", "result": fn()}
        except Exception as exc:  # noqa: BLE001 -- a failed step is a finding; the next steps still run
            report["steps"][name] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:500]}
        report["steps"][name]["seconds"] = round(time.time() - t0, 1)
        atomic_write_json(out / "check.json", report)
        print(f"{name}: {report['steps'][name]['status']} in {report['steps'][name]['seconds']} s", flush=True)

    record("environment", lambda: environment(device))
    record("tests", lambda: run_tests(device, out))
    record("roofline", lambda: run_roofline(device, out, 2 if a.small else 10))
    batches = [PAPER_BATCH] if a.small or device.type != "cuda" else [PAPER_BATCH, 512, 2048]
    compiled = [False] if device.type != "cuda" else [False, True]
    figures = []

    def steps():
        for stage in ("teacher", "student"):
            for batch in batches:
                for c in compiled:
                    try:
                        figures.append(steps_per_second(stage, device, batch, 3 if a.small else 30, c))
                    except Exception as exc:  # noqa: BLE001 -- e.g. torch.compile unavailable
                        figures.append({"stage": stage, "batch": batch, "compiled": c,
                                        "error": f"{type(exc).__name__}: {exc}"[:300]})
                    print(f"  {figures[-1]}", flush=True)
        return {"figures": figures, "paper_profile_hours": paper_hours(figures)}
    record("steps", steps)
    record("notebooks", lambda: run_notebooks(device, out, ["00_tour"] if a.small else
                                              ["00_tour", "03_teacher", "04_student"]))
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    atomic_write_json(out / "check.json", report)
    print(json.dumps({k: v["status"] for k, v in report["steps"].items()}))
    return report


if __name__ == "__main__":
    main()

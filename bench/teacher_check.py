"""One tutorial-profile teacher (the kit's own pipeline: run.run_experiment, stage "teacher") on a DATA spec with
config overrides; prints and appends one JSON line with its test metrics, its mirror rate and its validation curve.

    python bench/teacher_check.py '{"num_atoms": 32, "seed": 0}' /tmp/run --warmup 300 \\
        --append bench/results/long/teacher_init.jsonl

``--warmup N`` raises the learning rate linearly over the first N steps. The screen behind
docs/paper_vs_code.md ("Which signs the 6D teacher misses"), bench/results/long/teacher_init.jsonl."""
from __future__ import annotations

import json
import time

from records import emit, run_arguments  # bench/records.py (scripts run as python bench/NAME.py)

from itespy.config import make_config
from itespy.run import run_experiment
from itespy.runfolder import RunFolder

PROTOCOLS = ("mpjpe_scaled_flip", "p_mpjpe_flip", "mpjpe_scaled")
RATES = ("mirror_rate", "wrong_handed_rate")


def warm_up(steps: int):
    """Patch the trainer's optimiser so that its learning rate rises linearly over the first ``steps`` steps."""
    from itespy import train as train_module
    original = train_module.make_optimizer

    def patched(cfg, model, stage="teacher"):
        opt, sched = original(cfg, model, stage)
        step_fn, count = opt.step, [0]

        def step(*args, **kwargs):
            count[0] += 1
            scale = min(1.0, count[0] / steps)
            for group in opt.param_groups:
                group["lr"] = group.setdefault("warm_base_lr", group["lr"]) * scale
            return step_fn(*args, **kwargs)
        opt.step = step
        return opt, sched
    train_module.make_optimizer = patched


def main(argv=None):
    p = run_arguments(__doc__)
    p.add_argument("--warmup", type=int, default=0, help="steps of linear learning-rate warm-up (0: none)")
    a = p.parse_args(argv)
    overrides = json.loads(a.overrides)
    if a.warmup:
        warm_up(a.warmup)
    cfg = make_config(a.profile, data=a.data, **overrides)
    t0 = time.time()
    metrics = run_experiment(cfg, a.out, stage="teacher", progress=False)
    history = RunFolder(a.out).history("teacher")
    curve = [[v["step"], round(v["mpjpe"], 1)] for epoch in history for v in epoch.get("validation", [])]
    t = metrics["teacher"]
    result = {"profile": a.profile, "data": a.data, "overrides": overrides, "warmup": a.warmup,
              "camera": cfg.camera, "seconds": round(time.time() - t0),
              **{k: round(t[k]["mean"], 1) for k in PROTOCOLS}, **{k: round(t[k], 3) for k in RATES if k in t},
              "validation_curve": curve}
    emit(result, a.append)


if __name__ == "__main__":
    main()

"""One tutorial-profile training (teacher then student, the kit's own pipeline: run.run_experiment) on a DATA
spec with config overrides; prints and appends one JSON line with both models' test metrics.

    python bench/tutorial_check.py '{"ric_rotation": "upright", "teacher_epochs": 6, "seed": 1}' /tmp/run \\
        --data mocap:../shared/data/bandai/bandai_h36m17.npz --append bench/results/long/tutorial_checks.jsonl

The screen behind docs/paper_vs_code.md ("Long teacher runs"): the upright cycle at tutorial scale, 3 seeds."""
from __future__ import annotations

import json
import time

from records import emit, run_arguments  # bench/records.py (scripts run as python bench/NAME.py)

from itespy.config import make_config
from itespy.run import run_experiment

PROTOCOLS = ("mpjpe_scaled_flip", "p_mpjpe_flip", "mpjpe_scaled")
RECIPE_FIELDS = ("ric_rotation", "teacher_epochs", "lambda_hand", "student_epochs")  # what the profile chose
RATES = ("mirror_rate", "wrong_handed_rate")  # the depth sign: how often the mirror wins, mirror-image bodies


def main(argv=None):
    p = run_arguments(__doc__)
    a = p.parse_args(argv)
    overrides = json.loads(a.overrides)
    cfg = make_config(a.profile, data=a.data, **overrides)
    t0 = time.time()
    metrics = run_experiment(cfg, a.out, stage="both", progress=False)
    result = {"profile": a.profile, "data": a.data, "overrides": overrides,
              "recipe": {k: getattr(cfg, k) for k in RECIPE_FIELDS}, "seconds": round(time.time() - t0),
              **{model: {**{k: round(metrics[model][k]["mean"], 1) for k in PROTOCOLS},
                         **{k: round(metrics[model][k], 3) for k in RATES if k in metrics[model]}}
                 for model in ("teacher", "student")}}
    emit(result, a.append)


if __name__ == "__main__":
    main()

"""Add the mirror columns (error without the depth mirror, mirror rate) to a published run whose rows were
computed before the kit recorded them, by evaluating the run's own cached models again. Nothing is trained.

    python tools/backfill_mirror.py results/tutorial runs/tutorial/cache

For each MPJPE / P-MPJPE record without ``kit_nomirror``: load the model of the record's job from the cache,
predict the row's test split, check that the paper's protocol gives the record's own number again (else stop:
not the same model or data), then store ``kit_nomirror`` and ``mirror_rate`` with ``mirror_backfill`` saying
how they were obtained. results.json is rewritten atomically; run tools/rerender_report.py afterwards."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from itespy import experiments as ex
from itespy import metrics
from itespy.checkpoints import load_model
from itespy.evaluate import predicted_poses
from itespy.io import atomic_write_json
from itespy.reproduce.jobs import code_version, load_row_splits
from itespy.reproduce.published import read_results

REPO = Path(__file__).resolve().parents[1]
SAME_NUMBER_MM = 1e-3  # the recomputed paper-protocol error must match the record's to this


def backfill(report_dir: Path, cache_dir: Path, log=print) -> int:
    results = read_results(report_dir / "results.json")
    todo = [r for r in results["records"] if r.get("metric") in ex.UNFLIPPED_PROTOCOLS and r.get("status") == "ok"
            and r.get("kit") is not None and r.get("kit_nomirror") is None and r.get("jobs")]
    evaluated = {}
    note = f"tools/backfill_mirror.py at code {code_version()}: the cached model evaluated again, nothing trained"
    for r in todo:
        job = r["jobs"][0]
        if job not in evaluated:
            stage = r["model"]
            path = cache_dir / job / f"{stage}.pt"
            model, cfg = load_model(path, stage)
            test = load_row_splits(cfg)["test"]
            pred = predicted_poses(model, test.keypoints_2d, teacher_output=cfg.teacher_output)
            evaluated[job] = (pred, test.poses_3d.astype(np.float64))
            log(f"{job}: {len(pred)} test poses")
        pred, gt = evaluated[job]
        flipped = metrics.evaluate_protocol(ex.METRICS[r["metric"]].protocol, pred, gt)["mean"]
        if abs(flipped - r["kit"]) > SAME_NUMBER_MM:
            raise SystemExit(f"{r['table']}:{r['row']} seed {r['seed']} {r['metric']}: recomputed {flipped:.4f} mm, "
                             f"recorded {r['kit']:.4f}: not the model or data of the record; nothing written")
        r["kit_nomirror"] = metrics.evaluate_protocol(ex.UNFLIPPED_PROTOCOLS[r["metric"]], pred, gt)["mean"]
        r["mirror_rate"] = metrics.mirror_rate(pred, gt)
        r["mirror_backfill"] = note
    atomic_write_json(report_dir / "results.json", results)
    log(f"{len(todo)} record(s) completed from {len(evaluated)} model(s)")
    return len(todo)


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        raise SystemExit(__doc__.splitlines()[3].strip())
    backfill((REPO / argv[0]).resolve(), Path(argv[1]).resolve())


if __name__ == "__main__":
    main()

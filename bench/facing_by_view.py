"""Where a model's depth sign goes wrong: its mirror rate by the body's facing azimuth (issue "ITES keeps learning").

For every test pose, the azimuth of the ground-truth body's facing direction in the camera frame (0 degrees:
facing the camera, +-180: back to the camera; the sign says which way it is turned), the same azimuth of the
prediction, whether the depth mirror scores better (the ``_flip`` protocols' choice) and whether the prediction
is a mirror-image body (:func:`itespy.skeleton.body_handedness` < 0).

    python bench/facing_by_view.py RUN_DIR [--split test] [--out bench/results/facing/NAME.json]

RUN_DIR is a run directory written by ``itespy train`` or a reproduce cache job (teacher.pt and/or student.pt);
the student is read when present (``--stage teacher`` to force the teacher). The data split is the run's own.
The depth mirror negates the turn (azimuth a -> -a) and keeps facing-toward or facing-away, so a model that turns
every body the same way scores right on one half of the views and needs the mirror on the other.
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from itespy.data import load_splits
from itespy.evaluate import predicted_poses
from itespy.io import atomic_write_json
from itespy.metrics import mirror_chosen
from itespy.predict.core import load_run
from itespy.skeleton import body_handedness
from itespy.viz import body_heading

BIN_DEG = 30


def by_view(pred, gt) -> dict:
    az, az_pred = body_heading(gt), body_heading(pred)  # 0 = facing the camera, sign = which way turned
    mirror, wrong = mirror_chosen(pred, gt), body_handedness(np.asarray(pred, np.float64)) < 0
    bins = []
    for lo in range(-180, 180, BIN_DEG):
        m = (az >= lo) & (az < lo + BIN_DEG)
        bins.append({"azimuth_deg": [lo, lo + BIN_DEG], "poses": int(m.sum()),
                     "mirror_rate": float(mirror[m].mean()) if m.any() else None,
                     "wrong_handed": float(wrong[m].mean()) if m.any() else None,
                     "pred_turned_positive": float((az_pred[m] > 0).mean()) if m.any() else None})
    return {"poses": int(len(gt)), "mirror_rate": float(mirror.mean()), "wrong_handed": float(wrong.mean()),
            "gt_turned_positive": float((az > 0).mean()), "pred_turned_positive": float((az_pred > 0).mean()),
            "bins": bins}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--split", default="test", choices=("train", "test"))
    p.add_argument("--stage", choices=("teacher", "student"))
    p.add_argument("--out")
    a = p.parse_args(argv)
    run = load_run(a.run_dir)
    stage = a.stage or ("student" if run["student"] is not None else "teacher")
    cfg = run["config"]
    poses = load_splits(cfg.data, seed=cfg.seed, max_train=cfg.max_train, max_test=cfg.max_test,
                        stride=cfg.stride)[a.split]
    result = {"run": str(a.run_dir), "stage": stage, "split": a.split, "data": cfg.data,
              **by_view(predicted_poses(run[stage], poses.keypoints_2d), poses.poses_3d)}
    print(f"{stage} on {a.split}: {result['poses']} poses, mirror rate {result['mirror_rate']:.2f}, "
          f"wrong-handed {result['wrong_handed']:.2f}, predicted turned positive {result['pred_turned_positive']:.2f} "
          f"(ground truth {result['gt_turned_positive']:.2f})")
    print("facing azimuth   poses  mirror  wrong-handed  predicted turned +")
    for b in result["bins"]:
        if b["poses"]:
            print(f"[{b['azimuth_deg'][0]:4d}, {b['azimuth_deg'][1]:4d})  {b['poses']:6d}  {b['mirror_rate']:6.2f}  "
                  f"{b['wrong_handed']:12.2f}  {b['pred_turned_positive']:18.2f}")
    if a.out:
        atomic_write_json(a.out, result)
    return result


if __name__ == "__main__":
    main()

"""Which joints' depth signs a trained teacher gets wrong: for each joint, the share of test poses where the sign of
its predicted depth relative to the hip differs from the truth's (joints within 50 mm of the hip's depth not
counted), over all poses and over the poses whose depth mirror scores better; prints and saves JSON.

    python bench/joint_signs.py "K=32 6D=runs/x/cache/teacher-..." "K=12 6D=..." \\
        --out bench/results/long/joint_signs.json

The measurement behind docs/paper_vs_code.md ("Which signs the 6D teacher misses")."""
from __future__ import annotations

import argparse

import numpy as np

from records import emit  # bench/records.py (scripts run as python bench/NAME.py)

from itespy.data import load_splits
from itespy.evaluate import predicted_poses
from itespy.io import atomic_write_json
from itespy.metrics import mirror_chosen
from itespy.runfolder import RunFolder
from itespy.skeleton import JOINT_NAMES, body_handedness

MIN_DEPTH_MM = 50.0  # a joint this close to the hip's depth has no sign to get wrong


def sign_errors(pred: np.ndarray, poses_3d: np.ndarray) -> dict:
    """Per-joint share of wrong depth signs (relative to the hip) over all poses and the mirror-chosen ones."""
    gt_z = poses_3d[..., 2] - poses_3d[:, :1, 2]
    counted = np.abs(gt_z) > MIN_DEPTH_MM
    wrong = (np.sign(pred[..., 2] - pred[:, :1, 2]) != np.sign(gt_z)) & counted
    mirrored = mirror_chosen(pred, poses_3d)

    def per_joint(rows):
        shares = wrong[rows].sum(0) / np.maximum(counted[rows].sum(0), 1)
        return {name: round(float(s), 3) for name, s in zip(JOINT_NAMES, shares) if name != JOINT_NAMES[0]}
    return {"mirror_rate": round(float(mirrored.mean()), 3),
            "wrong_handed_rate": round(float((body_handedness(pred) < 0).mean()), 3),
            "wrong_sign_all_joints": round(float(wrong.sum() / counted.sum()), 3),
            "per_joint": per_joint(slice(None)),
            "per_joint_mirror_chosen": per_joint(mirrored) if mirrored.any() else None}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="LABEL=RUN_DIR of a trained teacher (teacher.pt)")
    p.add_argument("--data", default="mocap:../shared/data/bandai/bandai_h36m17.npz")
    p.add_argument("--max-test", type=int, default=4096)
    p.add_argument("--seed", type=int, default=0, help="the split's seed (the runs' seed)")
    p.add_argument("--out", help="JSON file to write")
    a = p.parse_args(argv)
    test = load_splits(a.data, seed=a.seed, max_train=1, max_test=a.max_test)["test"]
    result = {"data": a.data, "test_poses": len(test), "min_depth_mm": MIN_DEPTH_MM, "teachers": {}}
    for label, run_dir in (r.rsplit("=", 1) for r in a.runs):
        model, _ = RunFolder(run_dir).load_model("teacher")
        result["teachers"][label] = {"run": run_dir, **sign_errors(predicted_poses(model, test.keypoints_2d),
                                                                   test.poses_3d)}
    emit(result, None)
    if a.out:
        atomic_write_json(a.out, result)


if __name__ == "__main__":
    main()

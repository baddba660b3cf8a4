"""The teacher scored with its depth averaged over views of each pose (the L_KD targets of
``config.kd_target``; docs/paper_vs_code.md, "Distillation targets"): how much better than the teacher itself
is what the student is asked to copy? Test split of the teacher run's own data, MPJPE / P-MPJPE in mm.

    PYTHONPATH=.:bench python bench/teacher_views.py /work/cc1/seed0 --out bench/results/long/teacher_views.json
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from itespy.checkpoints import load_model
from itespy.evaluate import evaluate_predictions
from itespy.geometry import lift_with_teacher_depth, root_centre
from itespy.inference import TARGET_VIEWS, teacher_depth_labels
from records import emit, teacher_run  # bench/records.py

PROTOCOLS = ("mpjpe_scaled_flip", "p_mpjpe_flip", "mpjpe_scaled")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("teacher_dirs", nargs="+", help="run directories holding teacher.pt and config.json")
    p.add_argument("--out", help="JSON-lines file to append each result to")
    a = p.parse_args(argv)
    for teacher_dir in map(Path, a.teacher_dirs):
        cfg, splits = teacher_run(teacher_dir)
        test = splits["test"]
        teacher, _ = load_model(teacher_dir / "teacher.pt", "teacher")
        scores = {}
        for target in TARGET_VIEWS:
            depth = teacher_depth_labels(teacher, test.keypoints_2d, "cpu", target=target)
            pred = root_centre(lift_with_teacher_depth(torch.as_tensor(test.keypoints_2d), torch.as_tensor(depth)).numpy())
            m = evaluate_predictions(pred, test, PROTOCOLS)
            scores[target] = {k: round(m[k]["mean"], 1) for k in PROTOCOLS}
        emit({"teacher_dir": str(teacher_dir), "seed": cfg.seed, "data": cfg.data, "views": scores}, a.out)


if __name__ == "__main__":
    main()

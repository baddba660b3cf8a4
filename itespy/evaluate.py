"""Evaluation of trained teachers and students over a PoseSet, with named metric protocols.

The student's prediction is Ŷs, its lifting of the input 2D. The teacher's is, by default
(``teacher_output="lifted"``), the input 2D lifted with the depth of R̂ Ŷt -- as the authors' code scores
it (../shared/reference/ITES-code-facts.md, Evaluation; docs/paper_vs_code.md). ``teacher_output=
"dictionary"`` scores R̂ Ŷt itself, a diagnostic that adds the teacher's reprojection error to every joint.
Both are in model units and are root-centred before the protocols fix the scale against the ground truth
in millimetres (see itespy.metrics for each protocol)."""
from __future__ import annotations

import numpy as np
import torch

from .geometry import root_centre
from .metrics import (PROTOCOLS, depth_flip, evaluate_protocol, joint_errors, mirror_chosen, procrustes_align,
                      wrong_handed_rate)
from .inference import predict

DEFAULT_PROTOCOLS = ("mpjpe_scaled_flip", "p_mpjpe_flip", "n_mpjpe", "mpjpe_scaled", "p_mpjpe", "pck150", "auc")
TEACHER_OUTPUTS = ("lifted", "dictionary")  # input 2D lifted with the teacher's depth | R̂ Ŷt itself
TEACHER_OUTPUT_KEY = {"lifted": "lifted_3d", "dictionary": "pose_3d"}


def check_teacher_output(teacher_output: str) -> str:
    if teacher_output not in TEACHER_OUTPUTS:
        raise ValueError(f"teacher_output: expected one of {TEACHER_OUTPUTS}, got {teacher_output!r}")
    return teacher_output


def predicted_poses(model, keypoints_2d, device="cpu", batch_size=1024, teacher_output="lifted") -> np.ndarray:
    """Root-centred 3D predictions (N, 17, 3) in model units from a teacher or a student.

    For a teacher, ``teacher_output`` picks its 3D: ``"lifted"`` (default; the input 2D lifted with the
    depth of R̂ Ŷt, as the authors' code scores and the student distils it) or ``"dictionary"`` (R̂ Ŷt)."""
    out = predict(model, keypoints_2d, device, batch_size)
    key = TEACHER_OUTPUT_KEY[check_teacher_output(teacher_output)] if "lifted_3d" in out else "pose_3d"
    return root_centre(out[key])


@torch.no_grad()
def canonical_spread(teacher, keypoints_2d, device="cpu", batch_size=1024) -> float:
    """Spread of the teacher's root-centred canonical pose Ŷt across inputs (model units): the standard
    deviation over the inputs of every joint coordinate, averaged. A collapsed teacher (one canonical pose
    for every input, which Adam produced in the short profiles) has a spread near 0."""
    canonical = root_centre(predict(teacher, keypoints_2d, device, batch_size)["canonical"].astype(np.float64))
    return float(canonical.std(axis=0).mean())


def evaluate_predictions(pred, poseset, protocols=DEFAULT_PROTOCOLS) -> dict:
    """Metrics of root-centred predictions against ``poseset.poses_3d`` (mm). Adds per-joint errors under
    ``mpjpe_scaled_flip`` for plots and the number of frames."""
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown:
        raise ValueError(f"protocol(s) {unknown}: expected names from {PROTOCOLS}")
    out = {name: evaluate_protocol(name, pred, poseset.poses_3d, poseset.actions) for name in protocols}
    flipped_better = mirror_chosen(pred, poseset.poses_3d)
    out["per_joint_mpjpe_scaled_flip"] = _per_joint(pred, poseset.poses_3d, flipped_better).tolist()
    out["mirror_rate"] = float(flipped_better.mean())  # how often the _flip protocols used the mirror
    out["wrong_handed_rate"] = wrong_handed_rate(pred)  # mirror-image bodies among the predictions
    out["frames"] = int(len(poseset))
    return out


def _per_joint(pred, gt, use_flip):
    chosen = np.where(use_flip[:, None, None], depth_flip(pred), root_centre(np.asarray(pred, np.float64)))
    scale = procrustes_align(chosen, gt)[1]
    return joint_errors(scale[:, None, None] * chosen, gt).mean(0)


def flat_pose(keypoints_2d) -> np.ndarray:
    """The trivial lifting every result should beat: all joints at the root's depth, (u·t, v·t, 0).

    This is what an untrained student predicts (its output layer starts at zero)."""
    import torch

    from .geometry import lift_with_depth
    kp = torch.as_tensor(np.asarray(keypoints_2d), dtype=torch.float32)
    return lift_with_depth(kp, torch.zeros(kp.shape[:-1])).numpy()


def evaluate_flat_baseline(poseset, protocols=DEFAULT_PROTOCOLS) -> dict:
    return evaluate_predictions(flat_pose(poseset.keypoints_2d), poseset, protocols)


def evaluate_model(model, poseset, device="cpu", protocols=DEFAULT_PROTOCOLS, batch_size=1024,
                   teacher_output="lifted") -> dict:
    """Metrics of a teacher or student on ``poseset``; a teacher's record also names its ``teacher_output``."""
    pred = predicted_poses(model, poseset.keypoints_2d, device, batch_size, teacher_output)
    out = evaluate_predictions(pred, poseset, protocols)
    if getattr(model, "is_teacher", False):
        out["teacher_output"] = teacher_output
    return out


def summary_line(metrics: dict) -> str:
    """'MPJPE 85.6 mm, P-MPJPE 54.9 mm (protocols mpjpe_scaled_flip, p_mpjpe_flip)'."""
    return (f"MPJPE {metrics['mpjpe_scaled_flip']['mean']:.1f} mm, P-MPJPE {metrics['p_mpjpe_flip']['mean']:.1f} mm "
            "(protocols mpjpe_scaled_flip, p_mpjpe_flip)")


VALIDATION_PROTOCOLS = ("mpjpe_scaled_flip", "p_mpjpe_flip")
SPREAD_POSES = 1024  # validation inputs over which the canonical pose's spread is measured


def make_validator(val_set, cfg, device):
    """validate(model) -> {"mpjpe", "p_mpjpe"[, "spread"]} on the validation split (training clips); the
    teacher is scored as everywhere else (``cfg.teacher_output``) and its canonical pose's spread is logged,
    so a collapse (one canonical pose for every input) shows in the history. ``cfg``: the run's Config
    (``eval_batch_size``, ``teacher_output``). The training loop calls it back every ``cfg.val_every`` steps."""
    def validate(model):
        r = evaluate_model(model, val_set, device, VALIDATION_PROTOCOLS, cfg.eval_batch_size, cfg.teacher_output)
        out = {"mpjpe": r["mpjpe_scaled_flip"]["mean"], "p_mpjpe": r["p_mpjpe_flip"]["mean"]}
        if getattr(model, "is_teacher", False):
            out["spread"] = canonical_spread(model, val_set.keypoints_2d[:SPREAD_POSES], device)
        return out
    return validate

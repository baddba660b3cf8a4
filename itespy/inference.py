"""Running a trained network: :func:`predict` over model-space 2D (with its input check) and the teacher's
depth labels that stage 2 distils."""
from __future__ import annotations

import numpy as np
import torch

from .data.errors import check_array
from .skeleton import FLIP_PERMUTATION, NUM_JOINTS, mirror_pose


@torch.no_grad()
def predict(model, keypoints_2d: np.ndarray, device, batch_size: int = 1024) -> dict:
    """Run a teacher or student in eval mode over (N, 17, 2) model-space 2D; numpy outputs."""
    keypoints_2d = check_keypoints_2d(keypoints_2d, "predict: keypoints_2d")
    model.eval()
    outs = []
    for start in range(0, len(keypoints_2d), batch_size):
        x = torch.as_tensor(keypoints_2d[start:start + batch_size], dtype=torch.float32, device=device)
        outs.append({k: v.cpu().numpy() for k, v in model(x).items()})
    out = {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}
    bad = ~np.isfinite(out["pose_3d"]).all(axis=(-1, -2))
    if bad.any():
        raise ValueError(f"predict: the model gave NaN/inf 3D poses for {int(bad.sum())} of {len(bad)} inputs "
                         f"(first at index {int(np.argmax(bad))}, largest |2D| value there "
                         f"{float(np.abs(keypoints_2d[int(np.argmax(bad))]).max()):.3g}); expected model-space 2D "
                         "inputs (root-centred, normalised so the pelvis-to-head length is about 0.2).")
    return out


def check_keypoints_2d(keypoints_2d, where: str, min_poses: int = 1) -> np.ndarray:
    """Model-space 2D inputs must be a finite (N, 17, 2) array of numbers with N >= ``min_poses``; returns it as
    float32. Shape and finiteness: :func:`itespy.data.errors.check_array` (a DataError, which is a ValueError)."""
    a = np.asarray(keypoints_2d.detach().cpu() if isinstance(keypoints_2d, torch.Tensor) else keypoints_2d)
    a = check_array(a, where, (None, NUM_JOINTS, 2), finite=False)
    if not np.issubdtype(a.dtype, np.number):
        raise ValueError(f"{where}: expected numbers, got dtype {a.dtype}")
    if len(a) < min_poses:
        raise ValueError(f"{where}: got {len(a)} poses; expected at least {min_poses}"
                         + (" (batch norm needs two poses per training batch)" if min_poses > 1 else ""))
    return check_array(a, where, (None, NUM_JOINTS, 2)).astype(np.float32, copy=False)


# In-plane camera rolls (degrees) of the "view_mean" distillation target, and each target's views as
# (mirrored, roll) pairs.
VIEW_ROLLS_DEG = (-10.0, 0.0, 10.0)
TARGET_VIEWS = {"teacher": ((False, 0.0),), "flip_mean": ((False, 0.0), (True, 0.0)),
                "view_mean": tuple((m, r) for m in (False, True) for r in VIEW_ROLLS_DEG)}


def teacher_depth_labels(teacher, keypoints_2d, device, batch_size=1024, target: str = "teacher") -> np.ndarray:
    """L_KD targets: the frozen teacher's depth (R̂ Ŷt)_z of every training sample, computed once, (N, 17).

    ``target`` (not in the paper; docs/paper_vs_code.md, "Distillation targets"): ``"teacher"`` is Eq. 6's;
    ``"flip_mean"`` averages it with the depth the teacher gives the pose's mirror image (u -> -u, left and
    right joints swapped, read back swapped again); ``"view_mean"`` averages over those two and the in-plane
    camera rolls of ``VIEW_ROLLS_DEG`` of each. A mirror in x and a roll about the optical axis leave every
    joint's depth where it was, so each view is a second opinion of the same depths, with partly independent
    errors: an ensemble target a little better than the teacher itself."""
    views = TARGET_VIEWS.get(target)
    if views is None:
        raise ValueError(f"kd_target: expected one of {tuple(TARGET_VIEWS)}, got {target!r}")
    keypoints_2d = np.asarray(keypoints_2d, dtype=np.float32)
    total = 0.0
    for mirrored, roll_deg in views:
        view = mirror_pose(keypoints_2d, axis=0) if mirrored else keypoints_2d
        if roll_deg:
            c, s = np.cos(np.deg2rad(roll_deg)), np.sin(np.deg2rad(roll_deg))
            view = view @ np.array([[c, s], [-s, c]], dtype=np.float32)  # each (u, v) rotated by roll_deg
        depth = predict(teacher, view, device, batch_size)["pose_3d"][..., 2]
        total = total + (depth[..., list(FLIP_PERMUTATION)] if mirrored else depth)
    return total / len(views)


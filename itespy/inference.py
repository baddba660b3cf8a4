"""Running a trained network: :func:`predict` over model-space 2D (with its input check) and the teacher's
depth labels that stage 2 distils."""
from __future__ import annotations

import numpy as np
import torch

from .data.errors import check_array
from .skeleton import NUM_JOINTS


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


def teacher_depth_labels(teacher, keypoints_2d, device, batch_size=1024) -> np.ndarray:
    """L_KD targets: the frozen teacher's depth (R̂ Ŷt)_z of every training sample, computed once, (N, 17)."""
    return predict(teacher, keypoints_2d, device, batch_size)["pose_3d"][..., 2]

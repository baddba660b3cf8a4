"""Rotations, projections and the 2D normalisation of the ITES set-up (paper Sec. 3, 4.2).

Conventions, used everywhere in itespy:

* Poses are arrays/tensors of shape ``(..., 17, 3)`` (3D) or ``(..., 17, 2)`` (2D): one row per joint.
* A rotation matrix R acts on column vectors, ``y = R x``. For row-stacked poses this is
  ``poses @ R.transpose(-1, -2)`` -- use :func:`rotate` rather than writing it by hand.
* Model space ("model units"): the virtual camera has intrinsics I3, the root joint sits on the optical
  axis at depth ``t = ROOT_DISTANCE = 5``. A root-centred 3D pose Y (model units) projects to
  ``P(Y) = (x, y) / max(1, t + z)`` (perspective, :func:`perspective_project`).
  2D inputs are therefore root-centred normalised image coordinates (dimensionless).
* Ground-truth 3D is in millimetres (camera frame, root-centred for evaluation).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .skeleton import HEAD, ROOT

ROOT_DISTANCE = 5.0  # t: distance from the camera to the root joint, model units (paper Sec. 4.2)
MIN_DEPTH = 1.0  # depth clamp z = max(1, t + d) (paper Sec. 3.3)
TARGET_ROOT_HEAD_2D = 1.0 / ROOT_DISTANCE  # mean pelvis-to-head 2D length after normalisation
_MIN_6D_NORM = 1e-8  # floor on a 6D half's length before it is normalised
_SMALL_ANGLE = 1e-4  # below this |w| (radians) the Taylor series of Rodrigues' formula is used


def so3_exponential_map(log_rot: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula: axis-angle vectors (..., 3) [radians] -> rotation matrices (..., 3, 3).

    R = I + sin(θ)/θ [w]x + (1 - cos θ)/θ² [w]x², with Taylor expansions near θ = 0 so the result
    and its gradient stay finite at w = 0."""
    if log_rot.shape[-1] != 3:
        raise ValueError(f"so3_exponential_map: expected (..., 3) axis-angle vectors, got {tuple(log_rot.shape)}")
    theta2 = (log_rot * log_rot).sum(-1, keepdim=True)
    small = theta2 < _SMALL_ANGLE ** 2
    theta2_safe = torch.where(small, torch.ones_like(theta2), theta2)
    theta = theta2_safe.sqrt()
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / theta2_safe)
    x, y, z = log_rot.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*log_rot.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=log_rot.dtype, device=log_rot.device).expand_as(skew)
    return eye + a[..., None] * skew + b[..., None] * (skew @ skew)


def rotation_from_6d(six_d: torch.Tensor) -> torch.Tensor:
    """Two 3-vectors (..., 6) -> rotation matrices (..., 3, 3) by Gram-Schmidt (Zhou et al., CVPR 2019).

    Column 1 is a1/|a1|, column 2 is a2 minus its part along column 1, normalised, column 3 their cross
    product. Unlike the axis-angle vector of :func:`so3_exponential_map`, this map is continuous over all of
    SO(3) and does not depend on the length of its input, so a network output that grows does not turn the
    rotation faster."""
    if six_d.shape[-1] != 6:
        raise ValueError(f"rotation_from_6d: expected (..., 6) vectors, got {tuple(six_d.shape)}")
    a1, a2 = six_d[..., :3], six_d[..., 3:]
    b1 = a1 / a1.norm(dim=-1, keepdim=True).clamp_min(_MIN_6D_NORM)
    a2 = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    b2 = a2 / a2.norm(dim=-1, keepdim=True).clamp_min(_MIN_6D_NORM)
    return torch.stack([b1, b2, torch.cross(b1, b2, dim=-1)], dim=-1)


def rotation_angle(rotation) -> np.ndarray:
    """The angle of rotation matrices (..., 3, 3) in degrees, in [0, 180]: θ = arccos((tr R - 1) / 2)."""
    rotation = np.asarray(rotation, dtype=np.float64)
    if rotation.shape[-2:] != (3, 3):
        raise ValueError(f"rotation_angle: expected (..., 3, 3) rotation matrices, got {rotation.shape}")
    cos_angle = (np.trace(rotation, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cos_angle, -1.0, 1.0)))


def random_rotations(n: int, generator: torch.Generator | None = None, max_angle: float = math.pi,
                     dtype=torch.float32, device=None) -> torch.Tensor:
    """(n, 3, 3) random rotations. ``max_angle = π`` gives the uniform (Haar) distribution on SO(3)
    (random unit quaternions); a smaller ``max_angle`` [radians] gives a uniformly random axis with an
    angle drawn so that the rotations are uniform on the ball of radius max_angle (rejection-free)."""
    dev = device if device is not None else (generator.device if generator is not None else "cpu")
    if max_angle >= math.pi:
        q = torch.randn(n, 4, generator=generator, dtype=torch.float64, device=dev)
        q = q / q.norm(dim=-1, keepdim=True)
        w, x, y, z = q.unbind(-1)
        r = torch.stack([
            1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
            2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
            2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
        ], dim=-1).reshape(n, 3, 3)
        return r.to(dtype)
    axis = torch.randn(n, 3, generator=generator, dtype=dtype, device=dev)
    axis = axis / axis.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    angle = max_angle * torch.rand(n, 1, generator=generator, dtype=dtype, device=dev)
    return so3_exponential_map(axis * angle)


def random_axis_angle_rotations(n: int, generator: torch.Generator | None = None, max_angle: float = math.pi,
                                dtype=torch.float32, device=None) -> torch.Tensor:
    """(n, 3, 3) rotations with axis = normalised Gaussian vector and angle ~ U[0, max_angle]
    (the sampling of the authors' code for the teacher cycle; not Haar-uniform)."""
    dev = device if device is not None else (generator.device if generator is not None else "cpu")
    axis = torch.randn(n, 3, generator=generator, dtype=dtype, device=dev)
    axis = axis / axis.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    angle = max_angle * torch.rand(n, 1, generator=generator, dtype=dtype, device=dev)
    return so3_exponential_map(axis * angle)


def random_vertical_rotations(n: int, generator: torch.Generator | None = None, max_angle: float = 2 * math.pi,
                              dtype=torch.float32, device=None) -> torch.Tensor:
    """(n, 3, 3) rotations about the camera's vertical (y) axis by an angle ~ U[0, max_angle] radians."""
    dev = device if device is not None else (generator.device if generator is not None else "cpu")
    angle = max_angle * torch.rand(n, generator=generator, dtype=dtype, device=dev)
    axis = torch.zeros(n, 3, dtype=dtype, device=dev)
    axis[:, 1] = 1.0
    return so3_exponential_map(axis * angle[:, None])


def rotate(poses: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """Apply R (column-vector convention, y = R x) to row-stacked poses (..., J, 3)."""
    return poses @ rotation.transpose(-1, -2)


def perspective_depth(depth_offset: torch.Tensor, t: float = ROOT_DISTANCE) -> torch.Tensor:
    """z = max(1, t + d): camera depth of a joint whose depth offset from the root is d (model units)."""
    return torch.clamp(depth_offset + t, min=MIN_DEPTH)


def perspective_project(poses: torch.Tensor, t: float = ROOT_DISTANCE) -> torch.Tensor:
    """P(Y): root-relative 3D (..., J, 3) in model units -> 2D (..., J, 2), dividing by max(1, t + z)."""
    if poses.shape[-1] != 3:
        raise ValueError(f"perspective_project: expected (..., J, 3) 3D poses, got {tuple(poses.shape)}")
    return poses[..., :2] / perspective_depth(poses[..., 2:3], t)


def orthographic_project(poses: torch.Tensor, t: float = ROOT_DISTANCE) -> torch.Tensor:
    """Scaled orthographic projection (x, y) / t: the perspective model with all depth differences ignored."""
    return poses[..., :2] / t


def lift_with_depth(keypoints_2d: torch.Tensor, depth_offset: torch.Tensor, t: float = ROOT_DISTANCE) -> torch.Tensor:
    """Student lifting (Sec. 3.3): (u, v) and depth offsets d -> 3D (u·z, v·z, d) with z = max(1, t + d).

    keypoints_2d: (..., J, 2) normalised image coordinates; depth_offset: (..., J); returns (..., J, 3)."""
    z = perspective_depth(depth_offset, t)[..., None]
    return torch.cat([keypoints_2d * z, depth_offset[..., None]], dim=-1)


def lift_with_teacher_depth(keypoints_2d: torch.Tensor, depth: torch.Tensor,
                            t: float = ROOT_DISTANCE) -> torch.Tensor:
    """Teacher lifting as the authors' code evaluates it: the input 2D (u, v) and the depth d of the
    teacher's camera-frame pose R̂ Ŷt -> (u·(t + d), v·(t + d), d) (model units; no depth clamp, as there).

    keypoints_2d: (..., J, 2) model-space 2D; depth: (..., J); returns (..., J, 3)."""
    return torch.cat([keypoints_2d * (depth[..., None] + t), depth[..., None]], dim=-1)


def root_centre(poses, root: int = ROOT):
    """Subtract the root joint (works for numpy arrays and tensors of shape (..., J, D))."""
    return poses - poses[..., root:root + 1, :]


def pixels_to_normalised(keypoints_px: np.ndarray, focal_px, scale: float = 1.0) -> np.ndarray:
    """Pixels -> model-space 2D input.

    Root-centre the pixel coordinates, divide by the focal length(s) ``focal_px`` (pixels; scalar,
    (2,) or broadcastable to (..., 1, 2)), giving dimensionless normalised image coordinates, then
    multiply by the dataset-wide ``scale`` from :func:`normalisation_scale`."""
    kp = np.asarray(keypoints_px, dtype=np.float64)
    return (root_centre(kp) / np.asarray(focal_px, dtype=np.float64) * scale).astype(np.float32)


def normalisation_scale(keypoints_norm: np.ndarray, target: float = TARGET_ROOT_HEAD_2D) -> float:
    """Dataset-wide factor s so that the mean pelvis-to-head (joint 0 -> 10) 2D length equals 1/t.

    Input: root-centred normalised image coordinates (pixels / focal). With the root at depth t, a
    2D pelvis-head length of 1/t means the 3D pelvis-head length is about 1 model unit."""
    kp = np.asarray(keypoints_norm, dtype=np.float64)
    mean_len = np.linalg.norm(kp[..., HEAD, :] - kp[..., ROOT, :], axis=-1).mean()
    if not np.isfinite(mean_len) or mean_len <= 0:
        raise ValueError("normalisation_scale: the mean pelvis-to-head 2D length is zero or not finite; "
                         "expected real (non-degenerate) 2D poses.")
    return float(target / mean_len)

"""The Human3.6M 17-joint skeleton (H36M-17) used everywhere in itespy.

Joint order (fixed across the kit):
0 Hip, 1 RHip, 2 RKnee, 3 RFoot, 4 LHip, 5 LKnee, 6 LFoot, 7 Spine, 8 Thorax,
9 Neck/Nose, 10 Head, 11 LShoulder, 12 LElbow, 13 LWrist, 14 RShoulder, 15 RElbow, 16 RWrist.
"R"/"L" are the subject's own right/left.
"""
from __future__ import annotations

import numpy as np

NUM_JOINTS = 17
ROOT = 0  # pelvis
HEAD = 10

JOINT_NAMES = (
    "Hip", "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot", "Spine", "Thorax",
    "Neck/Nose", "Head", "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist",
)

# PARENTS[j] is the joint that bone j hangs from (-1 for the root).
PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)

# Bones as (parent, child) pairs, one per non-root joint.
BONES = tuple((p, c) for c, p in enumerate(PARENTS) if p >= 0)

LEFT_JOINTS = (4, 5, 6, 11, 12, 13)
RIGHT_JOINTS = (1, 2, 3, 14, 15, 16)
# Left/right pairs (left, right).
LEFT_RIGHT_PAIRS = tuple(zip(LEFT_JOINTS, RIGHT_JOINTS))

# Permutation that swaps left and right joints (for mirroring a pose).
FLIP_PERMUTATION = tuple(
    dict(zip(LEFT_JOINTS + RIGHT_JOINTS, RIGHT_JOINTS + LEFT_JOINTS)).get(j, j)
    for j in range(NUM_JOINTS)
)


# Joints that fix a body's handedness (see body_handedness).
R_HIP, L_HIP, THORAX, NOSE = 1, 4, 8, 9


def _cross(a, b):
    """Cross product of (..., 3) arrays, written out so that numpy arrays and torch tensors both work."""
    ax, ay, az = a[..., 0], a[..., 1], a[..., 2]
    bx, by, bz = b[..., 0], b[..., 1], b[..., 2]
    return _stack((ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx), like=a)


def _stack(parts, like):
    if isinstance(like, np.ndarray):
        return np.stack(parts, axis=-1)
    import torch
    return torch.stack(parts, dim=-1)


def body_forward_vector(poses):
    """The direction a body faces, (Thorax − Hip) × (RHip − LHip), not normalised: (..., 17, 3) -> (..., 3)
    (numpy or torch, as given). For a subject facing the camera (camera frame, y down) it points along −z."""
    up = poses[..., THORAX, :] - poses[..., 0, :]
    right = poses[..., R_HIP, :] - poses[..., L_HIP, :]
    return _cross(up, right)


def body_handedness(poses, eps: float = 1e-9):
    """Handedness of 3D poses (..., 17, 3) -> (...,) in [-1, 1] (numpy or torch, as given): the cosine between
    the body's forward direction (:func:`body_forward_vector`) and the nose's offset from the thorax.

    A real body looks where its nose points, so the value is positive: in all 139,975 Bandai poses 99.9 % are
    above 0.05 and the median is 0.62. A pose mirrored in depth (z -> -z, which the 2D projection cannot tell
    apart) has the same 2D and the opposite sign: a mirror-image person, with its left side where a real body
    has its right. Proper rotations keep the sign, so it reads the same in the camera and canonical frames."""
    forward = body_forward_vector(poses)
    nose = poses[..., NOSE, :] - poses[..., THORAX, :]
    norm = ((forward * forward).sum(-1) * (nose * nose).sum(-1)) ** 0.5
    return (forward * nose).sum(-1) / (norm + eps)


def check_joint_count(array: np.ndarray, name: str = "pose array", dims: tuple = (2, 3)) -> None:
    """Raise a clear ValueError unless ``array`` has shape (..., 17, D) with D in ``dims``."""
    shape = tuple(getattr(array, "shape", ()))
    if len(shape) < 2 or shape[-2] != NUM_JOINTS or shape[-1] not in dims:
        want = " or ".join(f"(..., {NUM_JOINTS}, {d})" for d in dims)
        raise ValueError(
            f"{name}: expected shape {want} in the H36M-17 joint order, got {shape}."
        )


def adjacency(self_loops: bool = True) -> np.ndarray:
    """Physical adjacency A (17x17, symmetric, float32): body bones, plus self loops by default.

    This is the A of Eq. 4 (physical-graph convolution) in the paper."""
    a = np.zeros((NUM_JOINTS, NUM_JOINTS), dtype=np.float32)
    for p, c in BONES:
        a[p, c] = a[c, p] = 1.0
    if self_loops:
        a[np.arange(NUM_JOINTS), np.arange(NUM_JOINTS)] = 1.0
    return a


def bone_lengths(poses: np.ndarray) -> np.ndarray:
    """Length of each bone (same unit as ``poses``); shape (..., 16) in the order of BONES."""
    poses = np.asarray(poses)
    check_joint_count(poses, "poses", dims=(3,))
    parent = np.array([p for p, _ in BONES])
    child = np.array([c for _, c in BONES])
    return np.linalg.norm(poses[..., child, :] - poses[..., parent, :], axis=-1)


def mirror_pose(poses: np.ndarray, axis: int = 0) -> np.ndarray:
    """Mirror poses across a coordinate plane and swap left/right joints so the result is a valid pose."""
    out = np.array(poses, copy=True)
    out[..., axis] = -out[..., axis]
    return out[..., list(FLIP_PERMUTATION), :]


from .coco import COCO_KEYPOINT_NAMES, coco_to_h36m  # noqa: E402,F401  (the COCO-17 layout: see itespy.coco)

"""Poses shared by the figures and the widgets: the example pose, rotations, projections and depth flips,
colours, and the training diagnostics computed on poses (ground-truth scale, body orientation).

Conventions (see :mod:`itespy.geometry`): poses are ``(17, 3)`` arrays (or ``(S, 17, 3)`` sequences)
in the H36M-17 joint order, in the camera frame: x right, y **down**, z = depth away from the camera.
Every drawing function is unit-agnostic (millimetres or model units, as given); the projection helpers
work in model units with the root at depth ``t`` (default ``geometry.ROOT_DISTANCE = 5``).
3D views are drawn the way the camera sees them: x to the right, y downwards, depth going into the
screen. Left limbs, right limbs and the torso get distinct colours (:data:`SIDE_COLORS`).
"""
from __future__ import annotations

import numpy as np
import torch

from .. import geometry
from ..skeleton import LEFT_JOINTS, NUM_JOINTS, PARENTS, RIGHT_JOINTS, body_forward_vector, check_joint_count

SIDE_COLORS = {"left": "#1f77b4", "right": "#d62728", "torso": "#444444"}  # subject's own left/right
POSE_PALETTE = ("#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")  # extra poses

# A standing pose (camera frame, millimetres, root-centred; x right, y down, z depth), facing the camera,
# so the subject's right side is on the image's left. Hand-made for teaching: the left forearm reaches
# towards the camera, the left knee is bent forward, the right arm hangs. Pelvis-to-head is 690 mm.
EXAMPLE_POSE_MM = np.array([
    [0, 0, 0], [-130, 0, 10], [-150, 440, 30], [-160, 880, 80],          # Hip, RHip, RKnee, RFoot
    [130, 0, -10], [170, 420, -120], [175, 840, 20],                     # LHip, LKnee, LFoot
    [0, -230, 10], [0, -480, 20], [0, -580, -40], [0, -690, 0],          # Spine, Thorax, Neck/Nose, Head
    [160, -450, 20], [260, -200, -10], [240, -40, -190],                 # LShoulder, LElbow, LWrist
    [-160, -450, 20], [-255, -200, 50], [-280, 40, 10],                   # RShoulder, RElbow, RWrist
], dtype=np.float64)

# Limbs offered by the depth-flip control: (label, child joint); the bone is PARENTS[joint] -> joint.
FLIP_CHOICES = (("none", None), ("left forearm", 13), ("right forearm", 16), ("left upper arm", 12),
                ("right upper arm", 15), ("left shin", 6), ("right shin", 3), ("left thigh", 5),
                ("right thigh", 2), ("head", 10))


def example_pose(units: str = "model") -> np.ndarray:
    """:data:`EXAMPLE_POSE_MM` as a fresh (17, 3) float64 array; ``units="model"`` rescales it so the
    pelvis-to-head length is 1 model unit (the scale of the ITES model space, geometry.ROOT_DISTANCE)."""
    pose = EXAMPLE_POSE_MM.copy()
    if units == "mm":
        return pose
    if units == "model":
        return pose / np.linalg.norm(pose[10] - pose[0])
    raise ValueError(f"example_pose: units must be 'model' or 'mm', got {units!r}")


def as_pose_array(x, name: str, dims=(3,)) -> np.ndarray:
    """Validate and convert (array or tensor) to float64 numpy, shape (..., 17, D)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    check_joint_count(x, name, dims=dims)
    return x


def joint_side(child: int) -> str:
    return "left" if child in LEFT_JOINTS else "right" if child in RIGHT_JOINTS else "torso"


# ----------------------------------------------------------------------------------------------------
# Rotations, projections and depth flips (numpy wrappers around itespy.geometry, float64)
# ----------------------------------------------------------------------------------------------------
def euler_rotation(yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """(3, 3) rotation R = R_z(roll) R_x(pitch) R_y(yaw), angles in **degrees**, column-vector convention.

    yaw turns about the camera's vertical (y) axis, pitch about its horizontal x axis, roll about the
    optical (z) axis."""
    a, b, c = np.deg2rad([yaw, pitch, roll])
    ry = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ rx @ ry


def rotate_pose(pose, rotation) -> np.ndarray:
    """R Y for row-stacked poses (..., 17, 3) (:func:`geometry.rotate`), returned as float64 numpy."""
    pose = as_pose_array(pose, "pose")
    return geometry.rotate(torch.from_numpy(pose), torch.as_tensor(np.asarray(rotation, np.float64))).numpy()


def project_pose(pose, t: float = geometry.ROOT_DISTANCE, mode: str = "perspective") -> np.ndarray:
    """Model-space 2D (..., 17, 2) of root-centred poses (model units) with the root at depth ``t``.

    ``mode="perspective"``: P(Y) = (x, y) / max(1, t + z); ``"orthographic"``: (x, y) / t."""
    pose = torch.from_numpy(as_pose_array(pose, "pose"))
    if mode == "perspective":
        return geometry.perspective_project(pose, t).numpy()
    if mode == "orthographic":
        return geometry.orthographic_project(pose, t).numpy()
    raise ValueError(f"project_pose: mode must be 'perspective' or 'orthographic', got {mode!r}")


def descendants(joint: int) -> list[int]:
    """``joint`` and every joint below it in the kinematic tree, parents before children."""
    out = [joint]
    for j in range(NUM_JOINTS):  # PARENTS is topologically ordered (parent index < child index)
        if PARENTS[j] in out:
            out.append(j)
    return out


def flip_joint_depth(pose, joint: int, t: float = geometry.ROOT_DISTANCE, mode: str = "ray") -> np.ndarray:
    """Flip the depth of the limb ending at ``joint`` relative to its parent joint (model units, camera frame).

    ``mode="mirror"``: reflect the limb's subtree across the plane z = z_parent. Bone lengths are kept and
    the orthographic 2D is unchanged, but the perspective 2D moves slightly.
    ``mode="ray"``: the perspective-exact flip: slide ``joint`` along its camera ray (the line through the
    camera centre at depth -t and the joint) to the other point at the same distance from its parent;
    descendants follow, each on its own ray, keeping its bone length (the solution nearest to the mirror
    flip is used; if a ray is too far to reach, the nearest point on it). The perspective 2D is unchanged.
    """
    pose = as_pose_array(pose, "pose").copy()
    if pose.ndim != 2:
        raise ValueError(f"flip_joint_depth: expects one pose (17, 3), got {pose.shape}")
    if not 0 < joint < NUM_JOINTS:
        raise ValueError(f"flip_joint_depth: joint must be a non-root joint index 1..16, got {joint}")
    parent, subtree = PARENTS[joint], descendants(joint)
    mirrored = pose.copy()
    mirrored[subtree, 2] = 2 * pose[parent, 2] - pose[subtree, 2]
    if mode == "mirror":
        return mirrored
    if mode != "ray":
        raise ValueError(f"flip_joint_depth: mode must be 'ray' or 'mirror', got {mode!r}")
    cam = pose + np.array([0.0, 0.0, t])  # camera-centred coordinates
    new, target = cam.copy(), mirrored + np.array([0.0, 0.0, t])
    for j in subtree:
        p, u = new[PARENTS[j]], cam[j]  # points on the ray: s * u
        length2 = np.sum((cam[j] - cam[PARENTS[j]]) ** 2)
        a, b, c = u @ u, -2 * (u @ p), p @ p - length2
        disc = b * b - 4 * a * c
        if j == joint:  # the other root of a s^2 + b s + c = 0, given that s = 1 is one root
            roots = [c / a]
        elif disc >= 0:
            roots = [(-b + np.sqrt(disc)) / (2 * a), (-b - np.sqrt(disc)) / (2 * a)]
        else:
            roots = [-b / (2 * a)]
        new[j] = min((s * u for s in roots), key=lambda q: np.sum((q - target[j]) ** 2))
    pose[subtree] = new[subtree] - np.array([0.0, 0.0, t])
    return pose


# ----------------------------------------------------------------------------------------------------
# Training diagnostics (notebooks 00, 03, 04): predictions brought to the ground truth's scale,
# body orientation
# ----------------------------------------------------------------------------------------------------
def to_ground_truth_scale(pred, gt, flip: bool = True) -> np.ndarray:
    """Predictions (N, 17, 3) in model units brought into the ground truth's units for display, the way the
    ``mpjpe_scaled_flip`` protocol measures them: root-centred, the per-sample Procrustes-optimal scale
    (:func:`itespy.metrics.procrustes_align`; no rotation), and with ``flip`` the depth mirror
    (:func:`itespy.metrics.depth_flip`) where that is closer. The mean joint distance of the result to
    ``gt`` is the protocol's per-sample error."""
    from .. import metrics
    pred = geometry.root_centre(as_pose_array(pred, "pred").reshape(-1, NUM_JOINTS, 3))
    gt = geometry.root_centre(as_pose_array(gt, "gt").reshape(-1, NUM_JOINTS, 3))
    if pred.shape != gt.shape:
        raise ValueError(f"to_ground_truth_scale: pred {pred.shape} and gt {gt.shape} differ in shape")
    candidates = [pred] + ([metrics.depth_flip(pred)] if flip else [])
    scaled = [metrics.procrustes_align(c, gt)[1][:, None, None] * c for c in candidates]
    errors = np.stack([np.linalg.norm(s - gt, axis=-1).mean(-1) for s in scaled])  # (1 or 2, N)
    return np.stack(scaled)[errors.argmin(0), np.arange(len(gt))]


def body_forward(poses) -> np.ndarray:
    """Unit vector (N, 3) the body faces (chest normal): :func:`itespy.skeleton.body_forward_vector`,
    (Thorax − Hip) × (RHip − LHip), normalised. For a subject facing the camera (camera frame, y down) it is (0, 0, −1).
    Defined by the body alone, so it rotates with the pose: R·pose faces R·forward."""
    forward = body_forward_vector(as_pose_array(poses, "poses").reshape(-1, NUM_JOINTS, 3))
    return forward / np.maximum(np.linalg.norm(forward, axis=-1, keepdims=True), 1e-12)


def body_heading(poses) -> np.ndarray:
    """Heading (N,) in degrees, (−180, 180], of the body about the camera's vertical (y) axis: 0 when the
    subject faces the camera, +90 when it faces the image's right (+x), ±180 when it turns its back."""
    f = body_forward(poses)
    return np.degrees(np.arctan2(f[:, 0], -f[:, 2]))


def direction_concentration(vectors) -> float:
    """Length of the mean of unit vectors (N, 3): 1 when all point the same way, near 0 when they are
    spread evenly. Independent of the frame, so it compares camera-frame and canonical poses fairly."""
    v = np.asarray(vectors, dtype=np.float64).reshape(-1, 3)
    v = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
    return float(np.linalg.norm(v.mean(0)))

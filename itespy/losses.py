"""The four training losses of ITES (paper Eq. 2, 3, 6, 7), C3DPO's canonicalisation loss (Table 4) and the
kit's handedness prior (not in the paper; off unless ``lambda_hand`` > 0).

All poses are in model units (root at depth t = 5 for projection); 2D inputs are model-space 2D.
``norm="squared"`` is the paper's (1/N)·‖·‖²_F, averaged over the batch; ``norm="euclidean"`` is the
authors' code: the mean over joints of the (unsquared) Euclidean distance.

The cycles are vectorised over the batch and the ``copies`` random rotations per pose: the rotated poses
are stacked into one (B·copies) batch and pushed through the network once.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from .skeleton import body_handedness
from .geometry import (perspective_project, random_axis_angle_rotations, random_rotations,
                       random_vertical_rotations, root_centre, rotate)


def pose_distance(a: torch.Tensor, b: torch.Tensor, norm: str = "squared") -> torch.Tensor:
    """Mean over the batch of (1/N)‖a − b‖²_F ("squared") or of the mean per-joint distance ("euclidean")."""
    diff = a - b
    if norm == "squared":
        return diff.pow(2).sum(-1).mean()
    if norm == "euclidean":
        return diff.pow(2).sum(-1).clamp_min(1e-12).sqrt().mean()
    raise ValueError(f"norm: expected 'squared' or 'euclidean', got {norm!r}")


def sample_rotations(n: int, kind: str, generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    """n rotations for a cycle: 'haar' (uniform on SO(3)), 'axis_angle' (angle ~ U[0, π], the authors'
    teacher cycle) or 'vertical' (about the camera y axis, angle ~ U[0, 2π], the authors' student cycle)."""
    kw = dict(generator=generator, dtype=like.dtype)
    if kind == "haar":
        r = random_rotations(n, **kw)
    elif kind == "axis_angle":
        r = random_axis_angle_rotations(n, max_angle=math.pi, **kw)
    elif kind == "vertical":
        r = random_vertical_rotations(n, max_angle=2 * math.pi, **kw)
    else:
        raise ValueError(f"rotation kind: expected 'haar', 'axis_angle' or 'vertical', got {kind!r}")
    return r.to(like.device)


def reprojection_loss(pose_3d: torch.Tensor, keypoints_2d: torch.Tensor, norm: str = "squared") -> torch.Tensor:
    """Eq. 2, L_REP = (1/N)‖P(R̂ Ŷt) − X‖²_F; ``pose_3d`` is R̂ Ŷt (B, 17, 3), X is (B, 17, 2)."""
    return pose_distance(perspective_project(pose_3d), keypoints_2d, norm)


def cycle_rotations(n_poses: int, copies: int, kind: str, generator: torch.Generator | None, like: torch.Tensor,
                    view: torch.Tensor | None = None) -> torch.Tensor:
    """R_rand of a teacher cycle, ``copies`` per pose: (n_poses·copies, 3, 3). ``kind="upright"`` is a turn
    about the camera's vertical axis of the pose *in its input view*, R_rand = R_y R̂ (``view`` = R̂, (n, 3, 3),
    used as a constant): every cycle input is then an upright view of the estimated body, as real camera views
    are. Other kinds: :func:`sample_rotations`."""
    if kind != "upright":
        return sample_rotations(n_poses * copies, kind, generator, like)
    if view is None:
        raise ValueError("cycle rotation 'upright' needs the teacher's view rotation R̂ (view=...)")
    turn = sample_rotations(n_poses * copies, "vertical", generator, like)
    return turn @ view.detach().repeat_interleave(copies, dim=0)


# Handedness a pose must reach before the prior stops pushing: 99 % of Bandai poses are above 0.25 (median 0.62),
# so the hinge leaves real bodies alone and acts on mirror-image ones (below 0).
HANDEDNESS_MARGIN = 0.2


def handedness_loss(pose_3d: torch.Tensor, lifted_3d: torch.Tensor | None = None,
                    margin: float = HANDEDNESS_MARGIN) -> torch.Tensor:
    """The kit's handedness prior (not in the paper): mean over the batch of max(0, margin − h(pose)), with h
    the cosine of :func:`itespy.skeleton.body_handedness` (positive for a real body, negative for its depth
    mirror), on the teacher's R̂ Ŷt and, when given, also on its lifted pose (the input 2D with R̂ Ŷt's depth).

    Why it exists: every ITES loss is unchanged when one pose's depths are mirrored (the 2D is the same, and
    a low-rank dictionary holds mirror-image bodies as easily as real ones), so nothing in Eq. 2-7 says which
    of the two a teacher should output. On Bandai, whose virtual cameras see the body from every side, the
    tutorial teacher answers with one fixed sign of the body's turn for every input and is right half the
    time (mirror rate 0.5, docs/paper_vs_code.md). This hinge tells it that a body looks where its nose
    points. Why both poses: on R̂ Ŷt alone a teacher can pass by moving the nose off its 2D position (a small
    reprojection cost), on the lifted pose alone by moving the nose's depth; a mirror-image body can dodge
    both only by doing both."""
    loss = torch.relu(margin - body_handedness(pose_3d)).mean()
    if lifted_3d is not None:
        loss = loss + torch.relu(margin - body_handedness(lifted_3d)).mean()
    return loss


def rotation_invariance_loss(teacher: Callable, canonical: torch.Tensor, copies: int = 4,
                             rotation: str = "haar", generator: torch.Generator | None = None,
                             norm: str = "squared", root_align: bool = False,
                             view: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 3, L_RIC = (1/N)‖F_t(P(R_rand Ŷt)) − Ŷt‖²_F.

    Rotate the canonical pose Ŷt (B, 17, 3) by ``copies`` random rotations each, project, re-estimate with
    the same teacher and compare the new canonical pose with Ŷt. ``root_align`` subtracts the root joint
    from Ŷt first (the authors' code does so during the first 15 teacher epochs). ``view``: the teacher's
    R̂ (B, 3, 3), needed by ``rotation="upright"`` (:func:`cycle_rotations`)."""
    if root_align:
        canonical = root_centre(canonical)
    b = canonical.shape[0]
    r = cycle_rotations(b, copies, rotation, generator, canonical, view)
    repeated = canonical.repeat_interleave(copies, dim=0)
    re_estimated = teacher(perspective_project(rotate(repeated, r)))["canonical"]
    return pose_distance(re_estimated, repeated, norm)


def knowledge_distillation_loss(student_depth: torch.Tensor, teacher_depth: torch.Tensor,
                                norm: str = "squared") -> torch.Tensor:
    """Eq. 6, L_KD = (1/N)‖d̂ − (R̂ Ŷt)_z‖²₂; both (B, 17). ``norm="l1"``: mean absolute difference (code)."""
    diff = student_depth - teacher_depth
    if norm == "squared":
        return diff.pow(2).mean()
    if norm == "l1":
        return diff.abs().mean()
    raise ValueError(f"kd norm: expected 'squared' or 'l1', got {norm!r}")


def rotation_equivariance_loss(student: Callable, pose_3d: torch.Tensor, copies: int = 4,
                               rotation: str = "haar", generator: torch.Generator | None = None,
                               norm: str = "squared") -> torch.Tensor:
    """Eq. 7, L_REC = (1/N)‖F_s(P(R_rand Ŷs)) − R_rand Ŷs‖²_F for the student's pose Ŷs (B, 17, 3)."""
    b = pose_3d.shape[0]
    r = sample_rotations(b * copies, rotation, generator, pose_3d)
    rotated = rotate(pose_3d.repeat_interleave(copies, dim=0), r)
    re_estimated = student(perspective_project(rotated))["pose_3d"]
    return pose_distance(re_estimated, rotated, norm)


def canonicalisation_loss(teacher, canonical: torch.Tensor, copies: int = 4, rotation: str = "haar",
                          generator: torch.Generator | None = None, norm: str = "squared",
                          view: torch.Tensor | None = None) -> torch.Tensor:
    """C3DPO's canonicalisation loss: Ψ(R_rand Ŷt) must recover Ŷt (used by the C3DPO-style teacher)."""
    b = canonical.shape[0]
    r = cycle_rotations(b, copies, rotation, generator, canonical, view)
    repeated = canonical.repeat_interleave(copies, dim=0)
    return pose_distance(teacher.canonicalise(rotate(repeated, r)), repeated, norm)

import numpy as np
import pytest
import torch
from torch import nn

from itespy.inference import VIEW_ROLLS_DEG, teacher_depth_labels
from itespy.skeleton import FLIP_PERMUTATION, mirror_pose

RNG = np.random.default_rng(0)
POSES_2D = (0.1 * RNG.standard_normal((5, 17, 2))).astype(np.float32)


class DepthFromU(nn.Module):
    """A stand-in teacher whose depth of joint j is a fixed function of the 2D: not mirror-symmetric."""

    def __init__(self):
        super().__init__()
        self.weights = torch.arange(17, dtype=torch.float32)

    def forward(self, x):
        z = x[..., 0] * self.weights + x[..., 1] ** 2
        return {"pose_3d": torch.cat([x, z[..., None]], dim=-1)}


def test_plain_targets_are_the_teachers_depth():
    labels = teacher_depth_labels(DepthFromU(), POSES_2D, "cpu")
    expected = POSES_2D[..., 0] * np.arange(17) + POSES_2D[..., 1] ** 2
    np.testing.assert_allclose(labels, expected, rtol=1e-5, atol=1e-7)


def test_flip_mean_targets_average_the_pose_and_its_mirror_image():
    teacher = DepthFromU()
    mirrored = mirror_pose(POSES_2D, axis=0)
    own = POSES_2D[..., 0] * np.arange(17) + POSES_2D[..., 1] ** 2
    of_mirror = (mirrored[..., 0] * np.arange(17) + mirrored[..., 1] ** 2)[..., list(FLIP_PERMUTATION)]
    labels = teacher_depth_labels(teacher, POSES_2D, "cpu", target="flip_mean")
    np.testing.assert_allclose(labels, 0.5 * (own + of_mirror), rtol=1e-5, atol=1e-7)
    assert not np.allclose(labels, own)  # the mirror changes something for this teacher


def test_flip_mean_leaves_a_mirror_symmetric_teacher_alone():
    class Symmetric(nn.Module):  # depth = u² + v²: a mirror in u gives the same depth at the swapped joint
        def forward(self, x):
            return {"pose_3d": torch.cat([x, (x ** 2).sum(-1, keepdim=True)], dim=-1)}
    plain = teacher_depth_labels(Symmetric(), POSES_2D, "cpu")
    np.testing.assert_allclose(teacher_depth_labels(Symmetric(), POSES_2D, "cpu", target="flip_mean"), plain,
                               rtol=1e-6)


def test_unknown_target_is_named():
    with pytest.raises(ValueError, match="kd_target"):
        teacher_depth_labels(DepthFromU(), POSES_2D, "cpu", target="ensemble")


def test_view_mean_targets_average_mirror_and_camera_rolls():
    teacher = DepthFromU()
    expected = 0.0
    for mirrored in (False, True):
        for roll in VIEW_ROLLS_DEG:
            view = mirror_pose(POSES_2D, axis=0) if mirrored else POSES_2D
            a = np.deg2rad(roll)
            rotated = np.stack([np.cos(a) * view[..., 0] - np.sin(a) * view[..., 1],
                                np.sin(a) * view[..., 0] + np.cos(a) * view[..., 1]], axis=-1)
            depth = rotated[..., 0] * np.arange(17) + rotated[..., 1] ** 2
            expected = expected + (depth[..., list(FLIP_PERMUTATION)] if mirrored else depth)
    labels = teacher_depth_labels(teacher, POSES_2D, "cpu", target="view_mean")
    np.testing.assert_allclose(labels, expected / (2 * len(VIEW_ROLLS_DEG)), rtol=1e-4, atol=1e-6)

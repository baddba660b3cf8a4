import math

import numpy as np
import pytest
import torch

from itespy import geometry


def test_exponential_map_is_a_rotation_and_matches_known_cases():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(100, 3, generator=g, dtype=torch.float64) * 2
    r = geometry.so3_exponential_map(w)
    eye = torch.eye(3, dtype=torch.float64)
    assert torch.allclose(r @ r.transpose(-1, -2), eye.expand_as(r), atol=1e-10)
    assert torch.allclose(torch.linalg.det(r), torch.ones(100, dtype=torch.float64), atol=1e-10)
    rz = geometry.so3_exponential_map(torch.tensor([0.0, 0.0, math.pi / 2], dtype=torch.float64))
    assert torch.allclose(rz @ torch.tensor([1.0, 0, 0], dtype=torch.float64),
                          torch.tensor([0.0, 1, 0], dtype=torch.float64), atol=1e-12)
    rx = geometry.so3_exponential_map(torch.tensor([math.pi, 0.0, 0.0], dtype=torch.float64))
    assert torch.allclose(rx, torch.diag(torch.tensor([1.0, -1, -1], dtype=torch.float64)), atol=1e-12)


def test_exponential_map_is_safe_near_zero():
    w = torch.tensor([[0.0, 0.0, 0.0], [1e-9, -2e-9, 1e-9], [1e-5, 0, 0]], dtype=torch.float64, requires_grad=True)
    r = geometry.so3_exponential_map(w)
    r.sum().backward()
    assert torch.isfinite(r).all() and torch.isfinite(w.grad).all()
    assert torch.allclose(r[0], torch.eye(3, dtype=torch.float64))
    # first order: R ≈ I + [w]x
    assert abs(r[2, 2, 1].item() - 1e-5) < 1e-12


def test_rotation_from_6d_is_a_rotation_continuous_and_ignores_length():
    g = torch.Generator().manual_seed(0)
    six_d = torch.randn(64, 6, generator=g, dtype=torch.float64)
    r = geometry.rotation_from_6d(six_d)
    assert torch.allclose(r @ r.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(64, 3, 3), atol=1e-12)
    assert torch.allclose(torch.linalg.det(r), torch.ones(64, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(geometry.rotation_from_6d(3.7 * six_d), r, atol=1e-12)  # only directions count
    # the first two columns are the inputs' Gram-Schmidt directions: a rotation's own columns come back
    rotations = geometry.random_rotations(16, generator=g, dtype=torch.float64)
    columns = torch.cat([rotations[..., 0], rotations[..., 1]], dim=-1)
    assert torch.allclose(geometry.rotation_from_6d(columns), rotations, atol=1e-12)
    # continuous: a small change of the input is a small change of R (no wrap-around as for axis-angle at π)
    step = 1e-6 * torch.randn(64, 6, generator=g, dtype=torch.float64)
    assert (geometry.rotation_from_6d(six_d + step) - r).abs().max() < 1e-3
    with pytest.raises(ValueError, match=r"rotation_from_6d: expected \(\.\.\., 6\)"):
        geometry.rotation_from_6d(torch.zeros(4, 3))


@pytest.mark.parametrize("sampler", [geometry.random_rotations, geometry.random_axis_angle_rotations,
                                     geometry.random_vertical_rotations])
def test_random_rotations_are_rotations_and_seeded(sampler):
    r1 = sampler(64, torch.Generator().manual_seed(3))
    r2 = sampler(64, torch.Generator().manual_seed(3))
    assert torch.equal(r1, r2)
    assert torch.allclose(torch.linalg.det(r1), torch.ones(64), atol=1e-5)


def test_haar_rotations_are_uniform_enough():
    r = geometry.random_rotations(20000, torch.Generator().manual_seed(0), dtype=torch.float64)
    # For Haar rotations E[R] = 0 and the trace has mean 0 (angles follow (1 - cos θ)/π).
    assert r.mean(0).abs().max() < 0.02
    assert abs(r.diagonal(dim1=-2, dim2=-1).sum(-1).mean().item()) < 0.03


def test_bounded_angle_rotations_stay_within_the_bound():
    r = geometry.random_rotations(500, torch.Generator().manual_seed(1), max_angle=0.3)
    angles = torch.arccos(((r.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1))
    assert angles.max() <= 0.3 + 1e-5
    vertical = geometry.random_vertical_rotations(100, torch.Generator().manual_seed(1))
    assert torch.allclose(vertical[:, 1], torch.tensor([0.0, 1.0, 0.0]).expand(100, 3), atol=1e-6)


def test_perspective_projection_of_hand_computed_points_and_depth_clamp():
    pts = torch.tensor([[1.0, 2.0, 0.0], [1.0, -1.0, 5.0], [2.0, 2.0, -4.5], [3.0, 3.0, -10.0]])
    proj = geometry.perspective_project(pts)
    expected = torch.tensor([[0.2, 0.4], [0.1, -0.1], [2.0, 2.0], [3.0, 3.0]])  # z = max(1, 5 + d)
    assert torch.allclose(proj, expected)
    assert torch.allclose(geometry.orthographic_project(pts), pts[:, :2] / 5)


def test_lifting_with_depth_reprojects_exactly():
    g = torch.Generator().manual_seed(0)
    kp = torch.randn(4, 17, 2, generator=g) * 0.1
    d = torch.randn(4, 17, generator=g)
    pose = geometry.lift_with_depth(kp, d)
    assert torch.allclose(geometry.perspective_project(pose), kp, atol=1e-6)
    assert torch.equal(pose[..., 2], d)


def test_rotate_uses_the_column_vector_convention():
    r = geometry.so3_exponential_map(torch.tensor([0.0, 0.0, math.pi / 2]))
    pose = torch.zeros(17, 3)
    pose[1] = torch.tensor([1.0, 0.0, 0.0])
    assert torch.allclose(geometry.rotate(pose, r)[1], r @ pose[1], atol=1e-6)


def test_normalisation_sets_mean_pelvis_head_length_to_one_fifth():
    rng = np.random.default_rng(0)
    px = rng.normal(500, 50, size=(10, 17, 2))
    norm = geometry.pixels_to_normalised(px, focal_px=1145.0)
    assert np.allclose(norm[:, 0], 0)
    s = geometry.normalisation_scale(norm)
    scaled = norm * s
    assert np.isclose(np.linalg.norm(scaled[:, 10] - scaled[:, 0], axis=-1).mean(), 1 / 5, rtol=1e-5)
    with pytest.raises(ValueError, match="pelvis-to-head"):
        geometry.normalisation_scale(np.zeros((3, 17, 2)))


def test_rotation_angle_of_known_rotations():
    from itespy.geometry import rotation_angle, so3_exponential_map
    angles = np.array([0.0, 30.0, 90.0, 179.0])
    axes = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 1.0, 0] / np.sqrt(2)])
    log_rot = torch.as_tensor(axes * np.radians(angles)[:, None], dtype=torch.float64)
    got = rotation_angle(so3_exponential_map(log_rot).numpy())
    np.testing.assert_allclose(got, angles, atol=1e-6)
    assert rotation_angle(np.eye(3)) == 0.0
    assert math.isclose(float(rotation_angle(np.diag([-1.0, -1.0, 1.0]))), 180.0)  # a half turn about z
    with pytest.raises(ValueError, match="rotation_angle"):
        rotation_angle(np.eye(4))

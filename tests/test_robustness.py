"""Numerical robustness at the extremes: the so(3) exponential map, Procrustes on degenerate poses, the
masked softmax of the graph layers, the depth clamp, and the networks on extreme 2D inputs. Each must give
finite numbers (and finite gradients) or a clear error."""
import math

import numpy as np
import pytest
import torch

from itespy import geometry, metrics
from itespy.config import make_config
from itespy.losses import reprojection_loss
from itespy.models import build_student, build_teacher
from itespy.models.graph import NonPhysicalGraphConv, PhysicalGraphConv, SemGraphConv
from itespy.skeleton import adjacency
from itespy.inference import predict
from itespy.train import student_loss, teacher_loss



def _is_rotation(r, atol):
    eye = torch.eye(3, dtype=r.dtype).expand_as(r)
    return (torch.allclose(r @ r.transpose(-1, -2), eye, atol=atol)
            and torch.allclose(torch.linalg.det(r), torch.ones(r.shape[:-2], dtype=r.dtype), atol=atol))


# ------------------------------------------------------------------------------------ exponential map
@pytest.mark.parametrize("dtype, atol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize("angle", [1e3, 1e6, 1e-12, 1e-30, 0.0, 1e-4 * (1 - 1e-6), 1e-4 * (1 + 1e-6)])
def test_exponential_map_at_extreme_angles_is_a_rotation_with_finite_gradients(angle, dtype, atol):
    axis = torch.tensor([[0.6, -0.48, 0.64], [0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]], dtype=dtype)
    w = (axis * angle).requires_grad_(True)
    r = geometry.so3_exponential_map(w)
    weights = torch.randn(r.shape, generator=torch.Generator().manual_seed(0), dtype=dtype)
    (r * weights).sum().backward()
    assert torch.isfinite(r).all() and torch.isfinite(w.grad).all()
    assert _is_rotation(r.detach(), atol)


def test_exponential_map_of_a_huge_angle_equals_the_angle_modulo_two_pi():
    axis = torch.tensor([0.6, -0.48, 0.64], dtype=torch.float64)
    for angle in (1e3, 12345.678):
        wrapped = math.fmod(angle, 2 * math.pi)
        assert torch.allclose(geometry.so3_exponential_map(axis * angle),
                              geometry.so3_exponential_map(axis * wrapped), atol=1e-9)


def test_exponential_map_gradient_at_exactly_zero_is_the_generator():
    """dR/dw at w = 0 is the skew generator: d R[2,1] / d w_x = 1, d R[1,2] / d w_x = -1, d R[0,0] / dw = 0."""
    w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    r = geometry.so3_exponential_map(w)
    (grad_21,) = torch.autograd.grad(r[2, 1], w, retain_graph=True)
    (grad_12,) = torch.autograd.grad(r[1, 2], w, retain_graph=True)
    (grad_00,) = torch.autograd.grad(r[0, 0], w)
    assert torch.equal(grad_21, torch.tensor([1.0, 0, 0], dtype=torch.float64))
    assert torch.equal(grad_12, torch.tensor([-1.0, 0, 0], dtype=torch.float64))
    assert torch.equal(grad_00, torch.zeros(3, dtype=torch.float64))


def test_exponential_map_small_and_large_branches_agree_at_the_switch():
    axis = torch.tensor([0.6, -0.48, 0.64], dtype=torch.float64)
    below = geometry.so3_exponential_map(axis * 1e-4 * (1 - 1e-9))
    above = geometry.so3_exponential_map(axis * 1e-4 * (1 + 1e-9))
    assert torch.allclose(below, above, atol=1e-12)


# ------------------------------------------------------------------------------------------ Procrustes
def _gt(n=3):
    return np.random.default_rng(0).normal(0, 200, (n, 17, 3))


DEGENERATE = {
    "all zero": np.zeros((3, 17, 3)),
    "one point": np.full((3, 17, 3), 7.0),
    "collinear": np.linspace(-1, 1, 17)[None, :, None] * np.array([1.0, 2.0, -3.0]) * np.ones((3, 1, 1)),
    "planar": np.concatenate([np.random.default_rng(1).normal(size=(3, 17, 2)), np.zeros((3, 17, 1))], -1),
    "tiny": _gt() * 1e-200,
    "huge": _gt() * 1e150,
}


@pytest.mark.parametrize("name", DEGENERATE)
def test_procrustes_and_every_protocol_on_degenerate_poses_are_finite(name):
    pred, gt = DEGENERATE[name], _gt()
    aligned, scale, rot, trans = metrics.procrustes_align(pred, gt)
    for value in (aligned, scale, rot, trans):
        assert np.isfinite(value).all(), name
    assert np.allclose(rot @ rot.transpose(0, 2, 1), np.eye(3), atol=1e-9)
    assert np.allclose(np.linalg.det(rot), 1.0, atol=1e-9)  # never a reflection, even when degenerate
    centroid_only = np.linalg.norm(gt - gt.mean(1, keepdims=True), axis=-1).mean(-1)
    assert (metrics.p_mpjpe(pred, gt) <= centroid_only + 1e-6 * np.abs(centroid_only)).all()
    for protocol in metrics.PROTOCOLS:
        for p, g in ((pred, gt), (gt, pred)):  # degenerate prediction, then degenerate ground truth
            result = metrics.evaluate_protocol(protocol, p, g)
            assert np.isfinite(result["mean"]), (name, protocol)


def test_procrustes_of_a_collapsed_prediction_has_scale_zero_and_the_gt_centroid():
    gt = _gt()
    aligned, scale, _, _ = metrics.procrustes_align(np.zeros_like(gt), gt)
    assert np.array_equal(scale, np.zeros(3))
    assert np.allclose(aligned, np.broadcast_to(gt.mean(1, keepdims=True), gt.shape))


def test_procrustes_with_nan_or_inf_is_a_clear_error():
    gt = _gt()
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(ValueError, match="expected finite values, found NaN or inf"):
            metrics.procrustes_align(np.full_like(gt, bad), gt)


# ------------------------------------------------------------------------------------ masked softmax
@pytest.mark.parametrize("value", [1e4, -1e4])
def test_physical_graph_weights_with_extreme_edge_masks(value):
    conv = PhysicalGraphConv(4, 3)
    with torch.no_grad():
        conv.edge_mask.fill_(value)
        conv.edge_mask[0] = -value  # one channel at the opposite extreme
        conv.edge_mask[1, ::2] = value * torch.linspace(-1, 1, 17)  # mixed signs within a channel
    weights = conv.edge_weights()
    assert torch.isfinite(weights).all()
    assert torch.allclose(weights.sum(1), torch.ones(3, 17), atol=1e-6)  # each column sums to 1
    assert (weights[:, torch.from_numpy(adjacency(self_loops=True)) == 0] == 0).all()  # no weight off the skeleton
    out = conv(torch.randn(2, 4, 17))
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("value", [1e4, -1e4])
def test_semgcn_edge_weights_with_extreme_logits(value):
    conv = SemGraphConv(4, 3)
    with torch.no_grad():
        conv.edge_logits.fill_(value)
        conv.edge_logits[::3] = -value
    weights = conv.edge_weights()
    assert torch.isfinite(weights).all()
    assert torch.allclose(weights.sum(1), torch.ones(17), atol=1e-6)  # each row sums to 1


def test_nonphysical_affinity_with_extreme_features_is_finite_and_normalised():
    conv = NonPhysicalGraphConv(8, 8)
    h = torch.randn(2, 8, 17, generator=torch.Generator().manual_seed(0)) * 1e4
    affinity = conv.affinity(h)
    assert torch.isfinite(affinity).all()
    assert torch.allclose(affinity.sum(1), torch.ones(2, 17), atol=1e-5)


def test_edge_mask_gradients_stay_finite_at_extreme_values():
    conv = PhysicalGraphConv(4, 3)
    with torch.no_grad():
        conv.edge_mask.fill_(1e4)
        conv.edge_mask[:, :, 0] = -1e4
    conv(torch.randn(2, 4, 17)).square().sum().backward()
    assert torch.isfinite(conv.edge_mask.grad).all() and torch.isfinite(conv.weight.grad).all()


# ---------------------------------------------------------------------------------------- depth clamp
@pytest.mark.parametrize("depth", [-1e6, 1e6, -1e30, 1e30, -5.0, -4.0])
def test_depth_clamp_keeps_projections_finite(depth):
    pose = torch.ones(2, 17, 3, requires_grad=True)
    with torch.no_grad():
        pose[..., 2] = depth
    projected = geometry.perspective_project(pose)
    projected.sum().backward()
    assert torch.isfinite(projected).all() and torch.isfinite(pose.grad).all()
    assert (geometry.perspective_depth(torch.tensor([depth])) >= geometry.MIN_DEPTH).all()
    expected = 1.0 / max(geometry.MIN_DEPTH, geometry.ROOT_DISTANCE + depth)
    assert torch.allclose(projected, torch.full_like(projected, expected), rtol=1e-6)


@pytest.mark.parametrize("depth", [-1e6, 1e6])
def test_lifting_with_extreme_depths_reprojects_to_the_input(depth):
    kp = torch.randn(3, 17, 2, generator=torch.Generator().manual_seed(0)) * 0.1
    d = torch.full((3, 17), depth, requires_grad=True)
    pose = geometry.lift_with_depth(kp, d)
    loss = reprojection_loss(pose, kp)
    loss.backward()
    assert torch.isfinite(pose).all() and torch.isfinite(d.grad).all()
    assert torch.allclose(geometry.perspective_project(pose), kp, rtol=1e-5, atol=1e-7)
    assert loss.item() < 1e-10


# ---------------------------------------------------------------------------------- extreme 2D inputs
EXTREME_2D = {
    "zeros": torch.zeros(4, 17, 2),
    "all 1e4": torch.full((4, 17, 2), 1e4),
    "random 1e4": torch.randn(4, 17, 2, generator=torch.Generator().manual_seed(0)) * 1e4,
    "one joint 1e4": torch.zeros(4, 17, 2).index_fill_(1, torch.tensor([13]), 1e4),
}
MODELS = [("paper", {}), ("reference", {}), ("paper", {"teacher_trunk": "agcn", "student": "resfc"}),
          ("paper", {"teacher": "c3dpo", "graph": "nonphysical"})]


@pytest.mark.parametrize("variant, overrides", MODELS)
@pytest.mark.parametrize("name", EXTREME_2D)
def test_teacher_and_student_on_extreme_inputs_give_finite_outputs(variant, overrides, name):
    cfg = make_config("smoke", variant, teacher_hidden=64, teacher_bottleneck=32, teacher_blocks=2,
                      student_channels=16, student_blocks=2, **overrides)
    x = EXTREME_2D[name]
    torch.manual_seed(0)
    for model in (build_teacher(cfg), build_student(cfg)):
        for mode in ("eval", "train"):
            getattr(model, mode)()
            with torch.no_grad():
                out = model(x)
            bad = [k for k, v in out.items() if not torch.isfinite(v).all()]
            assert not bad, f"{type(model).__name__} ({mode}) on {name}: non-finite {bad}"
        rotation = out.get("rotation")
        if rotation is not None:
            assert _is_rotation(rotation, 1e-4)


def test_a_training_step_on_all_zero_inputs_has_finite_losses_and_gradients():
    cfg = make_config("smoke", teacher_hidden=64, teacher_bottleneck=32, teacher_blocks=2, student_channels=16,
                      student_blocks=2)
    x = torch.zeros(8, 17, 2)
    for model, loss in ((build_teacher(cfg).train(), lambda m, g: teacher_loss(cfg, m, x, g, 0)),
                        (build_student(cfg).train(), lambda m, g: student_loss(cfg, m, x, torch.zeros(8, 17), g))):
        losses = loss(model, torch.Generator().manual_seed(0))
        losses["total"].backward()
        assert all(math.isfinite(float(torch.as_tensor(v).detach())) for v in losses.values())
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_predict_on_out_of_range_inputs_is_finite_or_a_clear_error():
    cfg = make_config("smoke", teacher_hidden=64, teacher_bottleneck=32, teacher_blocks=2, student_channels=16,
                      student_blocks=2)
    torch.manual_seed(0)
    teacher, student = build_teacher(cfg), build_student(cfg)
    for model in (teacher, student):
        assert np.isfinite(predict(model, np.full((3, 17, 2), 1e4, np.float32), "cpu")["pose_3d"]).all()
        with pytest.raises(ValueError, match="NaN/inf 3D poses for 3 of 3 inputs.*largest \\|2D\\| value there 1e\\+38"):
            predict(model, np.full((3, 17, 2), 1e38, np.float32), "cpu")

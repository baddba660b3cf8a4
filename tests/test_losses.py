import torch

from itespy import geometry, losses
from itespy.config import make_config
from itespy.models import build_student, build_teacher

G = torch.Generator().manual_seed(0)
POSE = torch.randn(6, 17, 3, generator=G) * 0.3


def test_reprojection_loss_zero_when_consistent_and_positive_when_perturbed():
    kp = geometry.perspective_project(POSE)
    assert losses.reprojection_loss(POSE, kp).item() < 1e-12
    # every 2D joint 0.1 off in x and y: (1/N)·‖·‖²_F = 0.1² + 0.1² = 0.02 per pose
    assert abs(losses.reprojection_loss(POSE, kp + 0.1).item() - 0.02) < 1e-6
    assert losses.reprojection_loss(POSE, kp, norm="euclidean").item() < 1e-5


class _OracleTeacher:
    """Maps any view of POSE[i] back to the canonical POSE[i]: perfectly rotation-invariant."""

    def __init__(self, canonical, wrong=False):
        self.canonical, self.wrong = canonical, wrong

    def __call__(self, kp2d):
        reps = kp2d.shape[0] // self.canonical.shape[0]
        out = self.canonical.repeat_interleave(reps, dim=0)
        return {"canonical": out + (0.2 if self.wrong else 0.0)}


def test_rotation_invariance_loss_on_constructed_cases():
    good = losses.rotation_invariance_loss(_OracleTeacher(POSE), POSE, generator=torch.Generator().manual_seed(1))
    bad = losses.rotation_invariance_loss(_OracleTeacher(POSE, wrong=True), POSE,
                                          generator=torch.Generator().manual_seed(1))
    assert good.item() < 1e-12 and bad.item() > 0.05


class _OracleStudent:
    """Knows the true depth of any projected pose in `bank`: perfectly rotation-equivariant."""

    def __init__(self, offset=0.0):
        self.offset = offset

    def __call__(self, kp2d):
        d = self.depth_lookup[: kp2d.shape[0]] + self.offset
        return {"pose_3d": geometry.lift_with_depth(kp2d, d), "depth": d}


def test_rotation_equivariance_loss_on_constructed_cases():
    gen_seed = 5
    r = losses.sample_rotations(POSE.shape[0] * 4, "haar", torch.Generator().manual_seed(gen_seed), POSE)
    rotated = geometry.rotate(POSE.repeat_interleave(4, dim=0), r)
    student = _OracleStudent()
    student.depth_lookup = rotated[..., 2]
    good = losses.rotation_equivariance_loss(student, POSE, generator=torch.Generator().manual_seed(gen_seed))
    student.offset = 0.3
    bad = losses.rotation_equivariance_loss(student, POSE, generator=torch.Generator().manual_seed(gen_seed))
    assert good.item() < 1e-10 and bad.item() > 0.01


def test_knowledge_distillation_loss():
    d = torch.randn(4, 17, generator=G)
    assert losses.knowledge_distillation_loss(d, d).item() == 0.0
    assert torch.isclose(losses.knowledge_distillation_loss(d + 0.5, d), torch.tensor(0.25))
    assert torch.isclose(losses.knowledge_distillation_loss(d + 0.5, d, norm="l1"), torch.tensor(0.5))


def test_cycles_are_vectorised_over_copies_and_differentiable():
    cfg = make_config("smoke")
    teacher, student = build_teacher(cfg), build_student(cfg)
    kp = geometry.perspective_project(POSE)
    out = teacher(kp)
    l_ric = losses.rotation_invariance_loss(teacher, out["canonical"], copies=4, generator=G)
    l_rec = losses.rotation_equivariance_loss(student, student(kp)["pose_3d"], copies=4, generator=G)
    (l_ric + l_rec).backward()
    assert teacher.pose_dictionary.weight.grad is not None and torch.isfinite(teacher.pose_dictionary.weight.grad).all()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())


def test_upright_cycle_turns_the_pose_about_the_vertical_in_its_input_view():
    g = torch.Generator().manual_seed(0)
    view = geometry.random_rotations(3, generator=g)
    canonical = torch.randn(3, 17, 3, generator=g)
    r = losses.cycle_rotations(3, 4, "upright", g, canonical, view)
    assert r.shape == (12, 3, 3)
    turn = r @ view.repeat_interleave(4, dim=0).transpose(1, 2)  # R_rand R̂ᵀ: the turn in the camera frame
    assert torch.allclose(turn[:, 1, 1], torch.ones(12), atol=1e-5)  # about the camera's y axis
    assert torch.allclose(turn[:, 1, [0, 2]], torch.zeros(12, 2), atol=1e-5)
    assert torch.allclose(torch.linalg.det(r), torch.ones(12), atol=1e-5)
    seen = geometry.rotate(canonical.repeat_interleave(4, dim=0), r)  # the pose in its view, turned upright
    in_view = geometry.rotate(canonical, view).repeat_interleave(4, dim=0)
    assert torch.allclose(seen[..., 1], in_view[..., 1], atol=1e-4)  # heights in the image are kept
    try:
        losses.cycle_rotations(3, 4, "upright", g, canonical)
    except ValueError as exc:
        assert "R̂" in str(exc)
    else:
        raise AssertionError("upright without the view must fail")
    teacher = build_teacher(make_config("smoke", teacher_hidden=32, teacher_bottleneck=8, teacher_blocks=1))
    out = teacher(torch.randn(8, 17, 2, generator=g) * 0.2)
    loss = losses.rotation_invariance_loss(teacher, out["canonical"], 2, "upright", g, "euclidean",
                                           view=out["rotation"])
    loss.backward()
    assert torch.isfinite(loss) and teacher.pose_dictionary.weight.grad is not None


def test_handedness_loss_acts_on_mirror_image_bodies_only():
    from itespy.skeleton import body_handedness
    poses = torch.randn(200, 17, 3, generator=torch.Generator().manual_seed(1)) * 0.3
    h = body_handedness(poses)
    poses = poses[h.abs() > losses.HANDEDNESS_MARGIN]  # clearly handed, one way or the other
    h = h[h.abs() > losses.HANDEDNESS_MARGIN]
    assert len(poses) > 20
    right_handed = torch.where((h > 0)[:, None, None], poses, poses * torch.tensor([1., 1., -1.]))
    assert losses.handedness_loss(right_handed) == 0  # real bodies beyond the margin are left alone
    mirrored = right_handed * torch.tensor([1., 1., -1.])  # their depth mirrors: same 2D, mirror-image bodies
    assert torch.allclose(geometry.orthographic_project(mirrored), geometry.orthographic_project(right_handed))
    loss = losses.handedness_loss(mirrored)
    assert loss > losses.HANDEDNESS_MARGIN  # every pose pays at least the margin
    mirrored = mirrored.clone().requires_grad_(True)
    losses.handedness_loss(mirrored).backward()
    assert mirrored.grad.abs().sum() > 0


def test_teacher_loss_adds_the_handedness_term_only_when_asked():
    from itespy.train import teacher_loss
    kp = geometry.perspective_project(POSE)
    teacher = build_teacher(make_config(profile="smoke"))
    off = teacher_loss(make_config(profile="smoke"), teacher, kp, torch.Generator().manual_seed(0), 0)
    on = teacher_loss(make_config(profile="smoke", lambda_hand=1.0), teacher, kp, torch.Generator().manual_seed(0), 0)
    assert "hand" not in off and on["hand"] >= 0
    assert torch.isclose(on["total"], off["total"] + on["hand"])


def test_handedness_loss_on_the_lifted_pose_adds_a_second_hinge():
    from itespy.skeleton import body_handedness
    poses = torch.randn(200, 17, 3, generator=torch.Generator().manual_seed(2)) * 0.3
    h = body_handedness(poses)
    real = torch.where((h > 0)[:, None, None], poses, poses * torch.tensor([1., 1., -1.]))[h.abs() > 0.5]
    mirror = real * torch.tensor([1., 1., -1.])
    assert losses.handedness_loss(real, real) == 0
    alone = losses.handedness_loss(real)
    assert losses.handedness_loss(real, mirror) > alone + losses.HANDEDNESS_MARGIN  # the lifted pose pays too

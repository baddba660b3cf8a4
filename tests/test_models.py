import numpy as np
import pytest
import torch

from itespy.checkpoints import AGCN_SIZED_KEY, load_model, save_model
from itespy.config import make_config
from itespy.experiments import AGCN_TEACHER_TRUNK
from itespy.models import build_student, build_teacher, count_parameters
from itespy.models.graph import NonPhysicalGraphConv, PhysicalGraphConv
from itespy.skeleton import adjacency

X = torch.randn(8, 17, 2, generator=torch.Generator().manual_seed(0)) * 0.1


@pytest.mark.parametrize("overrides", [{}, AGCN_TEACHER_TRUNK, {"teacher": "c3dpo"}, {"num_atoms": 4},
                                       {"camera": "six_d"}])
def test_teacher_variants_shapes(overrides):
    cfg = make_config("paper", **overrides)
    teacher = build_teacher(cfg).eval()
    out = teacher(X)
    assert out["coefficients"].shape == (8, cfg.num_atoms)
    assert out["rotation"].shape == (8, 3, 3) and out["canonical"].shape == (8, 17, 3)
    assert torch.allclose(out["pose_3d"], out["canonical"] @ out["rotation"].transpose(1, 2), atol=1e-6)
    print(overrides, "teacher parameters", count_parameters(teacher))


def test_camera_head_parameterisations():
    """axis_angle: 3 numbers through the so(3) exponential map (the authors'); six_d: 6 numbers through
    Gram-Schmidt, starting at R̂ = I when the head outputs zero. Both give proper rotations."""
    for camera, width in (("axis_angle", 3), ("six_d", 6)):
        teacher = build_teacher(make_config("smoke", camera=camera)).eval()
        assert teacher.camera_head.out_features == width
        with torch.no_grad():
            out = teacher(X)
            assert out["camera"].shape == (8, width)
            r = out["rotation"]
            assert torch.allclose(r @ r.transpose(1, 2), torch.eye(3).expand(8, 3, 3), atol=1e-5)
            assert torch.allclose(torch.linalg.det(r), torch.ones(8), atol=1e-5)
            teacher.camera_head.weight.zero_()
            teacher.camera_head.bias.zero_()
            assert torch.allclose(teacher(X)["rotation"], torch.eye(3).expand(8, 3, 3), atol=1e-6)
    with pytest.raises(ValueError, match="config.camera"):
        make_config("smoke", camera="quaternion")


def test_agcn_trunk_is_sized_by_the_teacher_fields():
    """Issue 28 item 4: teacher_hidden (channels per joint) and teacher_blocks take effect on the AGCN trunk."""
    small = build_teacher(make_config("smoke", teacher_trunk="agcn", teacher_hidden=16, teacher_blocks=2)).trunk
    large = build_teacher(make_config("smoke", teacher_trunk="agcn", teacher_hidden=32, teacher_blocks=4)).trunk
    assert (small.out_features, len(small.blocks)) == (16 * 17, 2)
    assert (large.out_features, len(large.blocks)) == (32 * 17, 4)
    with pytest.raises(ValueError, match="teacher_blocks.*even"):
        make_config("smoke", teacher_trunk="agcn", teacher_blocks=3)


def test_an_old_agcn_trunk_checkpoint_still_loads(tmp_path):
    """Checkpoints written before the AGCN trunk read its size from the config (always 64 x 8, whatever
    teacher_hidden said) are rebuilt at that size; new ones at the config's."""
    cfg = make_config("smoke", teacher_trunk="agcn", teacher_blocks=6)  # what an old T7 row stored
    old = build_teacher(cfg.replace(teacher_hidden=64, teacher_blocks=8)).eval()
    save_model(tmp_path / "teacher.pt", old, cfg, "teacher")
    state = torch.load(tmp_path / "teacher.pt", weights_only=False)
    del state[AGCN_SIZED_KEY]
    torch.save(state, tmp_path / "teacher.pt")
    loaded, _ = load_model(tmp_path / "teacher.pt", "teacher")
    assert torch.equal(loaded(X)["pose_3d"], old(X)["pose_3d"])
    small = make_config("smoke", teacher_trunk="agcn", teacher_hidden=16, teacher_blocks=2)
    save_model(tmp_path / "new.pt", build_teacher(small), small, "teacher")
    assert load_model(tmp_path / "new.pt", "teacher")[0].trunk.out_features == 16 * 17


def test_teacher_pose_is_the_dictionary_combination():
    teacher = build_teacher(make_config("paper")).eval()
    out = teacher(X)
    atoms = teacher.atoms()  # (K, 17, 3)
    manual = torch.einsum("bk,kjd->bjd", out["coefficients"], atoms)  # Ŷt = (ĉᵀ ⊗ I3) B
    assert torch.allclose(manual, out["canonical"], atol=1e-6)


@pytest.mark.parametrize("overrides", [{}, {"graph": "physical"}, {"graph": "nonphysical"}, {"student": "resfc"},
                                       {"student": "semgcn", "student_blocks": 4}])
def test_student_variants_shapes_and_lifting(overrides):
    cfg = make_config("paper", **overrides)
    student = build_student(cfg).eval()
    out = student(X)
    assert out["depth"].shape == (8, 17) and out["pose_3d"].shape == (8, 17, 3)
    print(overrides, "student parameters", count_parameters(student))


def test_reference_variant_sizes_match_the_authors_code_facts():
    cfg = make_config("paper", "reference")
    teacher_params = count_parameters(build_teacher(cfg))
    # ITES-code-facts: teacher 3.62 M parameters in the authors' code
    assert abs(teacher_params - 3.62e6) / 3.62e6 < 0.02


def test_physical_graph_conv_weights_follow_the_skeleton():
    conv = PhysicalGraphConv(4, 3)
    w = conv.edge_weights()
    a = torch.from_numpy(adjacency())
    assert w.shape == (3, 17, 17)
    assert torch.allclose(w.sum(1), torch.ones(3, 17))  # column-wise softmax
    assert (w[:, a == 0] == 0).all()  # no weight off the skeleton
    # Eq. 4 for one channel by hand
    h = torch.randn(2, 4, 17)
    manual = (conv.weight[1] @ h) @ w[1] + conv.bias[1]
    assert torch.allclose(conv(h)[:, 1], manual, atol=1e-5)


def test_nonphysical_affinity_is_data_dependent_and_column_normalised():
    conv = NonPhysicalGraphConv(6, 5)
    h1, h2 = torch.randn(1, 6, 17), torch.randn(1, 6, 17)
    a1, a2 = conv.affinity(h1), conv.affinity(h2)
    assert torch.allclose(a1.sum(1), torch.ones(1, 17), atol=1e-6)
    assert not torch.allclose(a1, a2)
    assert conv(h1).shape == (1, 5, 17)


def test_graph_type_switch_removes_the_other_term():
    phys = build_student(make_config("paper", graph="physical"))
    nonphys = build_student(make_config("paper", graph="nonphysical"))
    assert phys.blocks[0].conv.nonphysical is None and phys.blocks[0].conv.physical is not None
    assert nonphys.blocks[0].conv.physical is None and nonphys.blocks[0].conv.nonphysical is not None
    with pytest.raises(ValueError, match="graph"):
        build_student(make_config("paper").replace(graph="weird"))


# ---------------------------------------------------------------------------------- teacher's 3D, as scored
def test_teacher_lifted_pose_reprojects_exactly_and_keeps_the_teachers_depth():
    from itespy.geometry import perspective_project
    torch.manual_seed(0)
    teacher = build_teacher(make_config("smoke", teacher_hidden=64, teacher_bottleneck=16)).eval()
    x = 0.05 * torch.randn(8, 17, 2)
    with torch.no_grad():
        out = teacher(x)
    assert torch.allclose(out["lifted_3d"][..., 2], out["pose_3d"][..., 2])
    assert torch.allclose(perspective_project(out["lifted_3d"]), x, atol=1e-6)
    # R̂ Ŷt itself reprojects only approximately (an untrained teacher: far off)
    assert (perspective_project(out["pose_3d"]) - x).abs().max() > 1e-3


def test_evaluate_scores_the_lifted_teacher_by_default_and_the_dictionary_pose_on_request():
    from itespy.data import load_splits
    from itespy.evaluate import evaluate_model, predicted_poses
    test = load_splits("synthetic", seed=0, max_train=64, max_test=32)["test"]
    torch.manual_seed(0)
    teacher = build_teacher(make_config("smoke", teacher_hidden=64, teacher_bottleneck=16))
    lifted = predicted_poses(teacher, test.keypoints_2d)
    dictionary = predicted_poses(teacher, test.keypoints_2d, teacher_output="dictionary")
    assert not np.allclose(lifted, dictionary)
    a = evaluate_model(teacher, test, protocols=("mpjpe_scaled_flip",))
    b = evaluate_model(teacher, test, protocols=("mpjpe_scaled_flip",), teacher_output="dictionary")
    assert a["teacher_output"] == "lifted" and b["teacher_output"] == "dictionary"
    assert a["mpjpe_scaled_flip"]["mean"] != b["mpjpe_scaled_flip"]["mean"]
    with pytest.raises(ValueError, match="teacher_output"):
        predicted_poses(teacher, test.keypoints_2d, teacher_output="canonical")


# ---------------------------------------------------------------------------------- reference student
def test_reference_nonlocal_block_is_the_concatenation_form_and_starts_as_the_identity():
    from itespy.models.graph import GroupedNonLocal
    torch.manual_seed(0)
    block = GroupedNonLocal(8).eval()
    h = torch.randn(3, 8, 17)
    with torch.no_grad():
        assert torch.allclose(block(h), h)  # W's batch norm starts at zero: NL(x) = x
        x = h[:, :, block.order]
        theta, phi = block.theta(x), block.pool(block.phi(x))  # (B, C, 17), (B, C, 8)
        n, m = theta.shape[-1], phi.shape[-1]
        concat = torch.cat([theta[..., :, None].expand(-1, -1, n, m), phi[..., None, :].expand(-1, -1, n, m)], 1)
        brute = torch.relu(block.concat_project(concat))[:, 0] / m  # ReLU(wᵀ[θ_i; φ_j]) / M
        assert torch.allclose(block.affinity(x), brute, atol=1e-6)


def test_reference_graph_conv_initialisation_follows_the_code():
    import math

    from itespy.models.graph import SemGraphConv
    torch.manual_seed(0)
    conv = SemGraphConv(64, 128)
    bound = 1.414 * math.sqrt(6.0 / (64 * 128 + 2 * 128))
    for w in (conv.w_self.weight, conv.w_neigh.weight):
        assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound
    assert conv.bias.abs().max() <= 1 / math.sqrt(128) and conv.bias.abs().max() > 0
    assert torch.all(conv.edge_logits == 1.0)


def _perturbed(model, seed=0):
    """Random non-trivial weights (the zero/identity initialisations would hide terms) and random BN stats."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
        for name, b in model.named_buffers():
            if name.endswith("running_var"):
                b.uniform_(0.5, 2.0, generator=gen)
            elif name.endswith("running_mean"):
                b.normal_(0.0, 0.1, generator=gen)
    return model


def _forward_backward(model, x, fused):
    model.use_fast_path = fused
    model.zero_grad(set_to_none=True)
    out = model(x)
    y = out["depth"] if isinstance(out, dict) else out
    weights = torch.linspace(-1.0, 1.0, y.numel(), dtype=y.dtype).view_as(y)
    (weights * y).sum().backward()  # a loss that depends on every output differently
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    return y.detach(), grads, buffers


@pytest.mark.parametrize("make", [
    lambda: build_student(make_config("smoke", "paper", student_channels=32, student_blocks=4)),
    lambda: build_student(make_config("smoke", "paper", student_channels=32, student_blocks=4, graph="physical")),
    lambda: build_student(make_config("smoke", "paper", student_channels=32, student_blocks=4, graph="nonphysical")),
    lambda: build_student(make_config("smoke", "reference", student_channels=32, student_blocks=2)),
    lambda: build_teacher(make_config("smoke", "paper", **AGCN_TEACHER_TRUNK)).trunk,
], ids=["agcn-both", "agcn-physical", "agcn-nonphysical", "semgcn", "agcn-teacher-trunk"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_fused_forward_and_backward_equal_the_readable_modules(make, training):
    """Issue 15: models.fused computes what the readable modules compute (outputs, every parameter's
    gradient and the batch-norm running statistics), in float64 to separate real differences from rounding."""
    torch.manual_seed(0)
    model = _perturbed(make().double()).train(training)
    x = 0.1 * torch.randn(6, 17, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    start = {n: b.clone() for n, b in model.named_buffers()}
    y_ref, g_ref, b_ref = _forward_backward(model, x, fused=False)
    with torch.no_grad():  # undo the running-statistics update
        for name, b in model.named_buffers():
            b.copy_(start[name])
    y_new, g_new, b_new = _forward_backward(model, x, fused=True)
    assert y_ref.abs().max() > 1e-3  # a real output, not the zero-initialised head
    torch.testing.assert_close(y_new, y_ref, rtol=1e-10, atol=1e-12)
    assert g_new.keys() == g_ref.keys() and len(g_ref) > 10
    scale = max(float(g.abs().max()) for g in g_ref.values())  # a bias right before a batch norm has a
    for name in g_ref:  # mathematically zero gradient: compare it on the scale of all the gradients
        torch.testing.assert_close(g_new[name], g_ref[name], rtol=1e-9, atol=1e-12 * scale,
                                   msg=f"gradient of {name}")
    for name in b_ref:
        torch.testing.assert_close(b_new[name], b_ref[name], rtol=1e-10, atol=1e-12, msg=f"buffer {name}")


@pytest.mark.parametrize("graph", ["both", "physical", "nonphysical", "semgcn"])
def test_fused_inference_folds_batch_norm_and_follows_weight_changes(graph):
    """Eval mode without autograd uses cached constants (maps with the batch norm folded in); the result equals
    the readable modules', and a changed weight or running statistic is picked up on the next call."""
    torch.manual_seed(0)
    cfg = (make_config("smoke", "reference", student_channels=16, student_blocks=2) if graph == "semgcn" else
           make_config("smoke", "paper", student_channels=16, student_blocks=4, graph=graph))
    model = _perturbed(build_student(cfg).double()).eval()
    x = 0.1 * torch.randn(5, 17, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)

    def both():
        with torch.no_grad():
            model.use_fast_path = False
            ref = model(x)["depth"]
            model.use_fast_path = True
            return ref, model(x)["depth"]

    ref, new = both()
    torch.testing.assert_close(new, ref, rtol=1e-10, atol=1e-12)
    assert "_fused_inference" in model.__dict__  # the cached path ran
    with torch.no_grad():
        if graph == "semgcn":
            model.blocks[1][0].nonlocal_block.g.weight.mul_(-1.0)
            model.blocks[1][1].norm.running_var.mul_(2.0)
        else:
            model.blocks[1].norm.running_var.mul_(3.0)
            model.blocks[2].conv.physical.weight.mul_(-1.0) if graph != "nonphysical" else model.blocks[2].norm.bias.add_(1)
    ref2, new2 = both()
    assert (ref2 - ref).abs().max() > 1e-3
    torch.testing.assert_close(new2, ref2, rtol=1e-10, atol=1e-12)
    norm = model.blocks[1][1].norm if graph == "semgcn" else model.blocks[1].norm
    norm.weight = torch.nn.Parameter(2.0 * norm.weight.detach())  # a replaced parameter, not an in-place edit
    ref3, new3 = both()
    assert (ref3 - ref2).abs().max() > 1e-3
    torch.testing.assert_close(new3, ref3, rtol=1e-10, atol=1e-12)


def test_forward_hooks_on_layers_still_fire_with_the_fused_path():
    """Notebook 04 records the features entering each block with forward hooks: they must keep firing."""
    student = build_student(make_config("smoke", "paper", student_channels=16, student_blocks=2)).eval()
    assert student.use_fast_path
    seen = []
    hook = student.blocks[1].conv.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].shape))
    x = 0.1 * torch.randn(3, 17, 2)
    with torch.no_grad():
        with_hook = student(x)["depth"]
    hook.remove()
    with torch.no_grad():
        without = student(x)["depth"]
    assert seen == [(3, 16, 17)]  # (B, D, N) features of the readable module
    torch.testing.assert_close(with_hook, without, rtol=1e-5, atol=1e-6)


def test_pair_max_pooling_matches_maxpool1d_including_ties():
    """The fast path's pair max-pooling (two selection products, own backward) gives MaxPool1d's values and
    gradients on the reordered joints, also where both joints of a pair are equal (the gradient goes to the first)."""
    from itespy.models import fused
    from itespy.models.graph import GroupedNonLocal
    block = GroupedNonLocal(4).double()
    t = torch.randn(3, 5, 17, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    first, second = block.pairs
    t[:, :2, second[:4]] = t[:, :2, first[:4]]  # ties
    grad = torch.randn(3, 5, len(first), dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    ref_in, new_in = t.clone().requires_grad_(), t.clone().requires_grad_()
    ref = torch.nn.functional.max_pool1d(ref_in[:, :, block.order], 2)
    new = fused._pair_max(new_in, fused._pair_selection(block.pairs, 17, t))
    ref.backward(grad)
    new.backward(grad)
    torch.testing.assert_close(new, ref, rtol=0, atol=0)
    torch.testing.assert_close(new_in.grad, ref_in.grad, rtol=0, atol=1e-15)
    with torch.no_grad():
        torch.testing.assert_close(fused._pair_max(t, fused._pair_selection(block.pairs, 17, t)), ref.detach())

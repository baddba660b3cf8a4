import pytest
import torch

from itespy.config import make_config
from itespy.models import build_student, build_teacher, count_parameters
from itespy.models.graph import NonPhysicalGraphConv, PhysicalGraphConv
from itespy.skeleton import adjacency

X = torch.randn(8, 17, 2, generator=torch.Generator().manual_seed(0)) * 0.1


@pytest.mark.parametrize("overrides", [{}, {"teacher_trunk": "agcn"}, {"teacher": "c3dpo"}, {"num_atoms": 4}])
def test_teacher_variants_shapes(overrides):
    cfg = make_config("paper", **overrides)
    teacher = build_teacher(cfg).eval()
    out = teacher(X)
    assert out["coefficients"].shape == (8, cfg.num_atoms)
    assert out["rotation"].shape == (8, 3, 3) and out["canonical"].shape == (8, 17, 3)
    assert torch.allclose(out["pose_3d"], out["canonical"] @ out["rotation"].transpose(1, 2), atol=1e-6)
    print(overrides, "teacher parameters", count_parameters(teacher))


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

import numpy as np
import pytest

from itespy import skeleton


def test_parents_form_a_tree_rooted_at_the_pelvis():
    assert skeleton.PARENTS[skeleton.ROOT] == -1
    assert len(skeleton.BONES) == skeleton.NUM_JOINTS - 1
    for child, parent in enumerate(skeleton.PARENTS):
        assert parent < child or parent == -1  # parents come first: forward kinematics order


def test_adjacency_is_the_body_skeleton_with_self_loops():
    a = skeleton.adjacency()
    assert a.shape == (17, 17) and np.allclose(a, a.T)
    assert a.sum() == 2 * 16 + 17
    assert a[0, 1] == a[8, 11] == a[12, 13] == 1 and a[3, 6] == 0


def test_left_right_permutation_is_an_involution_that_swaps_sides():
    perm = np.array(skeleton.FLIP_PERMUTATION)
    assert (perm[perm] == np.arange(17)).all()
    assert perm[13] == 16 and perm[0] == 0 and perm[10] == 10


def test_bone_lengths_and_mirror_keep_lengths_of_mirrored_sides():
    rng = np.random.default_rng(0)
    pose = rng.normal(size=(17, 3))
    lengths = skeleton.bone_lengths(pose)
    mirrored = skeleton.bone_lengths(skeleton.mirror_pose(pose))
    assert sorted(np.round(lengths, 9)) == sorted(np.round(mirrored, 9))


def test_wrong_joint_count_names_the_input():
    with pytest.raises(ValueError, match="poses.*17"):
        skeleton.bone_lengths(np.zeros((16, 3)))


def test_body_handedness_is_positive_for_real_bodies_and_flips_with_the_depth_mirror(bandai_dir):
    import torch
    poses = np.load(bandai_dir / "bandai_h36m17.npz")["positions"][::50].astype(np.float64)
    h = skeleton.body_handedness(poses)
    assert h.shape == (len(poses),) and np.all(np.abs(h) <= 1 + 1e-9)
    assert (h > 0).mean() > 0.99 and np.median(h) > 0.4  # a body looks where its nose points
    mirrored = poses * np.array([1.0, -1.0, 1.0])  # any reflection gives the mirror-image body
    assert np.allclose(skeleton.body_handedness(mirrored), -h)
    turned = poses @ np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]).T  # a proper rotation keeps it
    assert np.allclose(skeleton.body_handedness(turned), h)
    assert torch.allclose(skeleton.body_handedness(torch.tensor(poses[:5])), torch.tensor(h[:5]))

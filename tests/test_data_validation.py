"""The validation split is drawn from the training clips, by whole sequence, deterministically."""
import numpy as np
import pytest

from itespy.data import load_splits
from itespy.data.validation import validation_split


@pytest.fixture(scope="module")
def train():
    return load_splits("synthetic", seed=0, max_train=4096, max_test=64)["train"]


def _sequences(ps):
    return set(np.asarray(ps.meta["per_frame"]["sequence"]).astype(str))


def test_split_is_by_sequence_disjoint_and_covers_the_training_split(train):
    rest, val = validation_split(train, max_poses=10**6)
    assert len(rest) + len(val) == len(train)
    assert len(val) > 0 and len(rest) > len(val)
    assert not _sequences(rest) & _sequences(val)  # no clip on both sides


def test_split_is_deterministic_and_capped(train):
    a_rest, a_val = validation_split(train, max_poses=100)
    b_rest, b_val = validation_split(train, max_poses=100)
    assert len(a_val) <= 100
    assert np.array_equal(a_val.keypoints_2d, b_val.keypoints_2d)
    assert np.array_equal(a_rest.poses_3d, b_rest.poses_3d)


def test_bad_fraction_and_tiny_split_are_named(train):
    with pytest.raises(ValueError, match="validation fraction"):
        validation_split(train, fraction=1.5)
    with pytest.raises(ValueError, match="at least 4"):
        validation_split(train.subset(np.arange(3)))

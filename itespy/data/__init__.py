"""itespy.data: every data source as a :class:`PoseSet` (paired model-space 2D inputs and camera-frame
3D ground truth in mm).

    >>> from itespy.data import load_splits
    >>> splits = load_splits("synthetic", seed=0)          # {'train': PoseSet, 'test': PoseSet}
    >>> splits["train"].keypoints_2d.shape                  # (20000, 17, 2)

DATA specs: ``synthetic`` | ``mocap:PATH.npz`` | ``bvh:DIR`` | ``h36m:DIR`` | ``h36m-cpn:DIR`` |
``3dhp:DIR`` (test only: :func:`load_test_set`). See docs/data.md.
"""
from .errors import DataError, DataNotFoundError
from .load import load_splits, load_test_set, missing_files
from .poseset import PoseSet, RawSplit, build_poseset, concatenate, even_subsample_index
from .spec import KNOWN_SOURCES, SPEC_PREFIXES, parse_spec

__all__ = ["PoseSet", "RawSplit", "build_poseset", "concatenate", "even_subsample_index", "KNOWN_SOURCES",
           "SPEC_PREFIXES", "DataError", "DataNotFoundError", "load_splits", "load_test_set", "missing_files", "parse_spec"]

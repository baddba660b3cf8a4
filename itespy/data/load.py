"""Load a DATA spec: :func:`load_splits` / :func:`load_test_set` dispatch to the source's loader.

Every loader turns its source into camera-frame 3D (mm) and pixels, then this module applies the one 2D
normalisation of the kit (:func:`itespy.geometry.pixels_to_normalised`): root-centre, divide by the
focal length, multiply by a dataset-wide scale computed on the *training* split
(:func:`itespy.geometry.normalisation_scale`, mean pelvis-to-head 2D length = 1/5).
"""
from __future__ import annotations

import numpy as np

from .errors import DataError
from .poseset import build_poseset, even_subsample_index, stride_index
from .spec import SPEC_HELP, parse_spec


def _raw_splits(source: str, path: str | None, *, seed: int, stride: int, cache_dir, options: dict):
    """Dispatch to the source's loader: {'train': RawSplit, 'test': RawSplit} (3dhp: test only)."""
    if source == "synthetic":
        from .synthetic import synthetic_raw_splits
        return synthetic_raw_splits(seed=seed, **options)
    if source == "mocap":
        from .mocap import mocap_raw_splits
        return mocap_raw_splits(path, seed=seed, **options)
    if source == "bvh":
        from .mocap import bvh_raw_splits
        return bvh_raw_splits(path, seed=seed, cache_dir=cache_dir, **options)
    if source in ("h36m", "h36m-cpn"):
        from .h36m import h36m_raw_splits
        return h36m_raw_splits(path, detections="cpn" if source == "h36m-cpn" else "gt", stride=stride,
                               **options)
    if source == "3dhp":
        from .mpi3dhp import mpi3dhp_raw_test
        return {"test": mpi3dhp_raw_test(path, **options)}
    raise DataError(f"Unknown DATA source {source!r}. Expected {SPEC_HELP}.")  # pragma: no cover


def load_splits(spec: str, *, seed: int = 0, max_train: int | None = None, max_test: int | None = None,
                stride: int = 1, cache_dir: str | None = None, **options) -> dict:
    """Parse a DATA spec and return {'train': PoseSet, 'test': PoseSet}.

    The 2D normalisation scale is computed on the whole training split (after ``stride``, before
    ``max_train``) and applied to both splits, so it does not depend on ``max_*``. ``max_train`` /
    ``max_test`` subsample evenly and deterministically. ``stride`` keeps every stride-th frame of each
    sequence. Never downloads. ``options`` go to the source loader (e.g. ``views=4``,
    ``augment_bones=False`` for mocap; ``n_subjects=...`` for synthetic).

    ``3dhp:DIR`` is a test-only source: it raises DataError here; use
    :func:`load_test_set` with the scale of the training data."""
    source, path = parse_spec(spec)
    if source == "3dhp":
        raise DataError(f"DATA spec {spec!r}: MPI-INF-3DHP is test-only in itespy (the paper trains on "
                        f"Human3.6M and tests on 3DHP). Train on another source and evaluate with "
                        f"itespy.data.load_test_set('{spec}', scale=<training scale>).")
    if not isinstance(stride, (int, np.integer)) or stride < 1:
        raise DataError(f"stride must be a positive integer, got {stride!r}")
    raw = _raw_splits(source, path, seed=seed, stride=stride, cache_dir=cache_dir, options=options)
    if source not in ("h36m", "h36m-cpn") and stride > 1:  # h36m applies stride while loading
        raw = {k: r.take(stride_index(r.per_frame.get("sequence"), len(r), stride)) for k, r in raw.items()}
    if len(raw["train"]) == 0:
        raise DataError(f"DATA spec {spec!r}: the training split is empty")
    if len(raw["test"]) == 0:
        raise DataError(f"DATA spec {spec!r}: the test split is empty")
    scale = raw["train"].normalisation_scale()
    out = {}
    for split, max_n in (("train", max_train), ("test", max_test)):
        r = raw[split]
        r = r.take(even_subsample_index(len(r), max_n))
        out[split] = build_poseset(r, scale=scale, name=f"{source}/{split}", spec=spec, split=split)
    return out


def load_test_set(spec: str, scale: float | None = None, *, seed: int = 0, max_test: int | None = None,
                  stride: int = 1, cache_dir: str | None = None, **options):
    """The test PoseSet of any source, normalised with ``scale`` (e.g. the scale of the training data a
    model was trained on: train on h36m, test on 3dhp). ``scale=None``: the source's own training scale
    (for 3dhp, which has no training split, the scale of the test set itself -- say so when reporting)."""
    source, path = parse_spec(spec)
    if not isinstance(stride, (int, np.integer)) or stride < 1:
        raise DataError(f"stride must be a positive integer, got {stride!r}")
    raw = _raw_splits(source, path, seed=seed, stride=stride, cache_dir=cache_dir, options=options)
    if source not in ("h36m", "h36m-cpn") and stride > 1:
        raw = {k: r.take(stride_index(r.per_frame.get("sequence"), len(r), stride)) for k, r in raw.items()}
    test = raw["test"]
    if len(test) == 0:
        raise DataError(f"DATA spec {spec!r}: the test split is empty")
    scale_source = "given"
    if scale is None:
        base = raw.get("train")
        if base is not None and len(base):
            scale, scale_source = base.normalisation_scale(), "train split"
        else:
            scale, scale_source = test.normalisation_scale(), "test split itself (no training split)"
    elif not np.isfinite(scale) or scale <= 0:
        raise DataError(f"load_test_set: scale must be a positive finite number, got {scale!r}")
    test = test.take(even_subsample_index(len(test), max_test))
    ps = build_poseset(test, scale=float(scale), name=f"{source}/test", spec=spec, split="test")
    ps.meta["scale_source"] = scale_source
    return ps


def missing_files(spec: str) -> str:
    """Why ``spec`` cannot be loaded for lack of its files ('' when they are there, or nothing is read from
    disk): what a run checks before it trains, so a row that cannot run is skipped with one reason instead of
    failing (and being retried) after its first hours."""
    from pathlib import Path

    from .h36m import FILE_2D, FILE_3D
    source, path = parse_spec(spec)
    if path is None:
        return ""
    root = Path(path)
    need = {"mocap": [root], "bvh": [root], "3dhp": [root], "h36m": [root / FILE_3D, root / FILE_2D["gt"]],
            "h36m-cpn": [root / FILE_3D, root / FILE_2D["cpn"]]}.get(source, [root])
    missing = [str(n) for n in need if not n.exists()]
    return (f"{spec}: {', '.join(missing)} not found (docs/data.md says which files go where)" if missing else "")

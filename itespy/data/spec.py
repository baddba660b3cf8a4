"""DATA specs (``synthetic``, ``mocap:PATH.npz``, ``bvh:DIR``, ``h36m:DIR``, ``h36m-cpn:DIR``, ``3dhp:DIR``),
the data-layer error types, input checks and :func:`load_splits` / :func:`load_test_set`.

Every loader turns its source into camera-frame 3D (mm) and pixels, then this module applies the one 2D
normalisation of the kit (:func:`itespy.geometry.pixels_to_normalised`): root-centre, divide by the
focal length, multiply by a dataset-wide scale computed on the *training* split
(:func:`itespy.geometry.normalisation_scale`, mean pelvis-to-head 2D length = 1/5).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

KNOWN_SOURCES = ("synthetic", "mocap", "bvh", "h36m", "3dhp")
# 'h36m-cpn' is the h36m source with CPN-detected 2D inputs (Table 1, IMG column).
SPEC_PREFIXES = ("synthetic", "mocap", "bvh", "h36m", "h36m-cpn", "3dhp")
SPEC_HELP = ("synthetic | mocap:PATH.npz | bvh:DIR | h36m:DIR | h36m-cpn:DIR | 3dhp:DIR "
             "(see docs/data.md)")


class DataError(ValueError):
    """Bad or missing input data: the message names the file/key and what was expected."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A file or folder named by a DATA spec does not exist (also a FileNotFoundError)."""


# ----------------------------------------------------------------------------------------------- specs
def parse_spec(spec: str) -> tuple[str, str | None]:
    """``'synthetic'`` -> ('synthetic', None); ``'mocap:/a/b.npz'`` -> ('mocap', '/a/b.npz'); ...

    Only the first ':' separates prefix and path (so paths may contain ':'). Raises DataError for an
    unknown prefix, a missing path, or a path given to ``synthetic``."""
    if not isinstance(spec, str) or not spec.strip():
        raise DataError(f"DATA spec must be a non-empty string, got {spec!r}. Expected {SPEC_HELP}.")
    spec = spec.strip()
    prefix, sep, path = spec.partition(":")
    prefix = prefix.strip().lower()
    if prefix not in SPEC_PREFIXES:
        raise DataError(f"Unknown DATA prefix {prefix!r} in spec {spec!r}. Expected {SPEC_HELP}.")
    if prefix == "synthetic":
        if sep and path.strip():
            raise DataError(f"DATA spec {spec!r}: 'synthetic' takes no path (it is generated in memory).")
        return "synthetic", None
    path = path.strip()
    if not path:
        raise DataError(f"DATA spec {spec!r}: '{prefix}:' needs a path, e.g. '{prefix}:/data/...'. "
                        f"Expected {SPEC_HELP}.")
    return prefix, os.path.expanduser(path)


# ----------------------------------------------------------------------------------------------- checks
def require_file(path, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise DataNotFoundError(f"{what}: file not found: {p}")
    if not p.is_file():
        raise DataError(f"{what}: expected a file, got a folder: {p}")
    return p


def require_dir(path, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise DataNotFoundError(f"{what}: folder not found: {p}")
    if not p.is_dir():
        raise DataError(f"{what}: expected a folder, got a file: {p}")
    return p


def check_array(arr, where: str, shape: tuple, *, finite: bool = True) -> np.ndarray:
    """Check ``arr`` against ``shape`` (None = any size) and (optionally) finiteness; return it as ndarray."""
    a = np.asarray(arr)
    if a.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, a.shape)):
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        hint = ""
        if len(shape) >= 2 and shape[-2] == 17 and a.ndim >= 2 and a.shape[-2] != 17:
            hint = f" (got {a.shape[-2]} joints; the kit expects the 17 H36M joints)"
        raise DataError(f"{where}: expected shape {want}, got {a.shape}{hint}")
    if finite and np.issubdtype(a.dtype, np.number):
        bad = ~np.isfinite(a)
        if bad.any():
            first = np.argwhere(bad)[0].tolist()
            raise DataError(f"{where}: contains {int(bad.sum())} NaN/inf values (first at index {first}); "
                            f"expected finite numbers")
    return a


def atomic_save_npz(path, **arrays) -> None:
    """np.savez to a temp file in the same folder, then os.replace (no half-written caches)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


# ----------------------------------------------------------------------------------------------- loading
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
    from .poseset import build_poseset, even_subsample_index, stride_index

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
    from .poseset import build_poseset, even_subsample_index, stride_index

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

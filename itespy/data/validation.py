"""A validation split drawn from the *training* clips, for choosing the checkpoint a run keeps.

The test split is never used to choose anything. Whole sequences (clips, or synthetic sequences) are
held out, chosen by the CRC32 of their names -- deterministic and independent of the seed and of
``max_train`` -- so that the validation poses are not near-copies of training frames."""
from __future__ import annotations

import zlib

import numpy as np

from .poseset import PoseSet, even_subsample_index

VALIDATION_FRACTION = 0.05  # share of the training sequences held out
MAX_VALIDATION_POSES = 2048  # evenly subsampled beyond this, to keep the per-epoch check cheap


def validation_split(train: PoseSet, fraction: float = VALIDATION_FRACTION,
                     max_poses: int = MAX_VALIDATION_POSES) -> tuple[PoseSet, PoseSet]:
    """(training poses left, validation poses) from a training PoseSet, split by sequence.

    Without per-frame ``sequence`` labels, contiguous blocks of 64 frames stand in for sequences. At least
    one sequence is held out and at least one kept; with fewer than two, the split is by frame blocks."""
    if not 0 < fraction < 1:
        raise ValueError(f"validation fraction: expected a number in (0, 1), got {fraction!r}")
    n = len(train)
    if n < 4:
        raise ValueError(f"validation split: the training split has {n} poses; expected at least 4")
    seq = train.meta.get("per_frame", {}).get("sequence")
    if seq is None or len(np.unique(np.asarray(seq))) < 2:
        seq = (np.arange(n) // 64).astype(str)
        if len(np.unique(seq)) < 2:
            seq = (np.arange(n) % 4).astype(str)
    names, inverse = np.unique(np.asarray(seq).astype(str), return_inverse=True)
    order = np.argsort([zlib.crc32(s.encode()) for s in names], kind="stable")
    k = min(len(names) - 1, max(1, int(round(fraction * len(names)))))
    held = np.zeros(len(names), dtype=bool)
    held[order[:k]] = True
    is_val = held[inverse]
    val = train.subset(np.flatnonzero(is_val))
    val = val.subset(even_subsample_index(len(val), max_poses))
    return train.subset(np.flatnonzero(~is_val)), val

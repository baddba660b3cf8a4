"""PoseSet: the one container every data source returns (paired 2D inputs and 3D ground truth).

Shapes and units (the contract the rest of itespy relies on):

* ``keypoints_2d`` (N, 17, 2) float32 -- model-space 2D input: root-centred pixels, divided by the
  focal length (pixels) and multiplied by the dataset-wide ``meta['scale']``
  (:func:`itespy.geometry.pixels_to_normalised`), so the mean pelvis-to-head 2D length on the
  training split is 1/5.
* ``poses_3d`` (N, 17, 3) float32 -- camera-frame ground truth in **millimetres**, root-centred
  (x right, y down, z forward; evaluation only, never a training input).
* ``subjects`` / ``actions`` (N,) str -- subject (or actor / style group) and action label per frame.
* ``meta`` -- a dict: ``source``, ``split``, ``scale``, ``units``, ``cameras`` ... and ``per_frame``, a
  dict of arrays with one row per frame (sliced by :meth:`PoseSet.subset`), e.g. ``camera`` (N,),
  ``sequence`` (N,), ``frame`` (N,), ``focal_px`` (N, 2), ``root_px`` (N, 2), ``root_cam_mm`` (N, 3).
  Pixels can be recovered as ``keypoints_2d / scale * focal_px[:, None] + root_px[:, None]``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..geometry import TARGET_ROOT_HEAD_2D, pixels_to_normalised, root_centre
from ..skeleton import HEAD, NUM_JOINTS, ROOT
from .errors import DataError, check_array

UNITS = {
    "keypoints_2d": "model-space 2D: (pixels - root pixel) / focal_px * scale (dimensionless)",
    "poses_3d": "millimetres, camera frame (x right, y down, z forward), root-centred",
    "focal_px": "pixels", "root_px": "pixels", "root_cam_mm": "millimetres, camera frame",
}


@dataclass
class PoseSet:
    keypoints_2d: np.ndarray  # (N,17,2) float32, model-space 2D input
    poses_3d: np.ndarray  # (N,17,3) float32, camera-frame mm, root-centred
    subjects: np.ndarray  # (N,) str
    actions: np.ndarray  # (N,) str
    name: str  # e.g. "synthetic/train"
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.keypoints_2d = np.asarray(self.keypoints_2d, dtype=np.float32)
        self.poses_3d = np.asarray(self.poses_3d, dtype=np.float32)
        self.subjects = np.asarray(self.subjects, dtype=str)
        self.actions = np.asarray(self.actions, dtype=str)
        n = len(self.keypoints_2d)
        if self.keypoints_2d.shape[1:] != (NUM_JOINTS, 2) or self.keypoints_2d.ndim != 3:
            raise DataError(f"PoseSet {self.name!r}: keypoints_2d must have shape (N, 17, 2), "
                            f"got {self.keypoints_2d.shape}")
        if self.poses_3d.shape != (n, NUM_JOINTS, 3):
            raise DataError(f"PoseSet {self.name!r}: poses_3d must have shape ({n}, 17, 3) to match "
                            f"keypoints_2d, got {self.poses_3d.shape}")
        for key in ("subjects", "actions"):
            if getattr(self, key).shape != (n,):
                raise DataError(f"PoseSet {self.name!r}: {key} must have shape ({n},), "
                                f"got {getattr(self, key).shape}")
        per_frame = self.meta.setdefault("per_frame", {})
        for key, value in per_frame.items():
            if len(value) != n:
                raise DataError(f"PoseSet {self.name!r}: meta['per_frame'][{key!r}] has {len(value)} rows, "
                                f"expected {n} (one per frame)")

    def __len__(self) -> int:
        return len(self.keypoints_2d)

    def __repr__(self) -> str:
        return (f"PoseSet(name={self.name!r}, frames={len(self)}, subjects={sorted(set(self.subjects.tolist()))}, "
                f"actions={len(set(self.actions.tolist()))}, scale={self.meta.get('scale')})")

    @property
    def scale(self) -> float | None:
        """The 2D normalisation factor (``meta['scale']``)."""
        return self.meta.get("scale")

    def subset(self, index) -> "PoseSet":
        """Rows selected by ``index`` (int array, boolean mask or slice); per-frame meta is sliced too."""
        if isinstance(index, slice):
            idx = np.arange(len(self))[index]
        else:
            idx = np.asarray(index)
            if idx.dtype == bool:
                if idx.shape != (len(self),):
                    raise DataError(f"PoseSet.subset: boolean mask of shape {idx.shape}, expected ({len(self)},)")
                idx = np.flatnonzero(idx)
            idx = idx.astype(np.int64).reshape(-1)
        meta = {k: v for k, v in self.meta.items() if k != "per_frame"}  # shallow: top-level keys are its own
        meta["per_frame"] = {k: np.asarray(v)[idx] for k, v in self.meta.get("per_frame", {}).items()}
        return PoseSet(self.keypoints_2d[idx], self.poses_3d[idx], self.subjects[idx], self.actions[idx],
                       self.name, meta)

    def summary(self) -> dict:
        """Frame count and the subjects / actions with their frame counts."""
        subj, sc = np.unique(self.subjects, return_counts=True)
        act, ac = np.unique(self.actions, return_counts=True)
        return {"name": self.name, "frames": len(self),
                "subjects": dict(zip(subj.tolist(), sc.tolist())),
                "actions": dict(zip(act.tolist(), ac.tolist()))}


def even_subsample_index(n: int, max_n: int | None) -> np.ndarray:
    """Deterministic, evenly spaced indices: all of range(n) when max_n is None or >= n."""
    if max_n is None or max_n >= n:
        return np.arange(n)
    if max_n <= 0:
        return np.arange(0)
    return np.floor(np.arange(max_n) * (n / max_n)).astype(np.int64)


def concatenate(sets: list[PoseSet], name: str, meta: dict | None = None) -> PoseSet:
    """Stack PoseSets (per-frame meta keys must match)."""
    if not sets:
        raise DataError(f"concatenate: no PoseSets to join for {name!r}")
    keys = set(sets[0].meta.get("per_frame", {}))
    per_frame = {k: np.concatenate([s.meta["per_frame"][k] for s in sets]) for k in keys}
    out_meta = dict(meta if meta is not None else {k: v for k, v in sets[0].meta.items() if k != "per_frame"})
    out_meta["per_frame"] = per_frame
    return PoseSet(np.concatenate([s.keypoints_2d for s in sets]), np.concatenate([s.poses_3d for s in sets]),
                   np.concatenate([s.subjects for s in sets]), np.concatenate([s.actions for s in sets]),
                   name, out_meta)


def stride_index(sequence, n: int, stride: int) -> np.ndarray:
    """Rows to keep for ``stride``: every stride-th frame *within each sequence* (rows of one sequence
    are contiguous). ``sequence`` None: every stride-th row."""
    if stride <= 1:
        return np.arange(n)
    if sequence is None:
        return np.arange(0, n, stride)
    seq = np.asarray(sequence)
    start = np.ones(n, dtype=bool)
    start[1:] = seq[1:] != seq[:-1]
    run_start = np.maximum.accumulate(np.where(start, np.arange(n), 0))
    return np.flatnonzero((np.arange(n) - run_start) % stride == 0)


@dataclass
class RawSplit:
    """What a loader hands to :func:`build_poseset`: camera-frame 3D and pixels, before normalisation.

    px (N,17,2) pixels; focal (N,2) pixels (fx, fy); cam3d (N,17,3) camera-frame mm (absolute, not
    root-centred); subjects/actions (N,) str; per_frame: dict of (N, ...) arrays; meta: dict."""
    px: np.ndarray
    focal: np.ndarray
    cam3d: np.ndarray
    subjects: np.ndarray
    actions: np.ndarray
    per_frame: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        n = len(self.px)
        where = self.meta.get("origin", "data")
        self.px = check_array(self.px, f"{where}: 2D keypoints (pixels)", (n, NUM_JOINTS, 2))
        self.cam3d = check_array(self.cam3d, f"{where}: 3D poses (camera frame, mm)", (n, NUM_JOINTS, 3))
        focal = np.asarray(self.focal, dtype=np.float64)
        if focal.ndim == 1:
            focal = np.broadcast_to(focal, (n, 2))
        self.focal = check_array(focal, f"{where}: focal lengths (pixels)", (n, 2))
        if n and (self.focal <= 0).any():
            raise DataError(f"{where}: focal lengths must be positive")
        self.subjects = np.asarray(self.subjects, dtype=str).reshape(-1)
        self.actions = np.asarray(self.actions, dtype=str).reshape(-1)
        if len(self.subjects) != n or len(self.actions) != n:
            raise DataError(f"{where}: subjects/actions need one label per frame ({n}), got "
                            f"{len(self.subjects)}/{len(self.actions)}")
        for k, v in self.per_frame.items():
            if len(v) != n:
                raise DataError(f"{where}: per-frame array {k!r} has {len(v)} rows, expected {n}")

    def __len__(self) -> int:
        return len(self.px)

    def take(self, idx) -> "RawSplit":
        idx = np.asarray(idx, dtype=np.int64)
        return RawSplit(self.px[idx], self.focal[idx], self.cam3d[idx], self.subjects[idx], self.actions[idx],
                        {k: np.asarray(v)[idx] for k, v in self.per_frame.items()}, dict(self.meta))

    def normalised_unscaled(self) -> np.ndarray:
        """Root-centred pixels / focal (float64), before the dataset-wide scale."""
        return root_centre(self.px.astype(np.float64)) / self.focal[:, None, :]

    def normalisation_scale(self) -> float:
        """The factor of :func:`itespy.geometry.normalisation_scale` for this split (mean pelvis-head 2D
        length of root-centred pixels / focal -> 1/5); same definition, computed from two joints only."""
        d = (self.px[:, HEAD].astype(np.float64) - self.px[:, ROOT]) / self.focal
        mean_len = np.linalg.norm(d, axis=-1).mean() if len(d) else np.nan
        if not np.isfinite(mean_len) or mean_len <= 0:
            raise DataError(f"{self.meta.get('origin', 'data')}: the mean pelvis-to-head 2D length is zero or "
                            f"not finite; expected real (non-degenerate) 2D poses")
        return float(TARGET_ROOT_HEAD_2D / mean_len)


def build_poseset(raw: RawSplit, *, scale: float, name: str, spec: str | None = None,
                  split: str | None = None) -> PoseSet:
    """Normalise a RawSplit with the dataset-wide ``scale`` into a PoseSet (see module docstring)."""
    kp = pixels_to_normalised(raw.px, raw.focal[:, None, :], scale)
    poses = root_centre(raw.cam3d.astype(np.float64)).astype(np.float32)
    per_frame = dict(raw.per_frame)
    per_frame["focal_px"] = raw.focal.astype(np.float32)
    per_frame["root_px"] = raw.px[:, ROOT].astype(np.float32)
    per_frame["root_cam_mm"] = raw.cam3d[:, ROOT].astype(np.float32)
    meta = dict(raw.meta)
    meta.update({"spec": spec, "split": split, "scale": float(scale), "units": dict(UNITS),
                 "per_frame": per_frame})
    return PoseSet(kp, poses, raw.subjects, raw.actions, name, meta)

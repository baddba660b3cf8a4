"""MPI-INF-3DHP test set (``3dhp:DIR``): six sequences TS1..TS6, test only.

Files: ``DIR/TS1/annot_data.mat`` ... ``DIR/TS6/annot_data.mat`` (DIR = the unpacked
``mpi_inf_3dhp_test_set`` folder; DIR may also be its parent). Keys used: ``annot2`` (2D, pixels),
``annot3`` (3D, camera frame, mm), ``univ_annot3`` (3D rescaled to the universal skeleton, mm),
``valid_frame`` (1 = keep), ``activity_annotation`` (1..7). Some files are MATLAB v7.3 (HDF5; read with
h5py, arrays come out as (N, 1, 17, D)), others classic MAT (scipy.io.loadmat, (D, 17, 1, N)); the
loader accepts either layout.

Joints are mapped from the 17-joint 3DHP test order to H36M-17 with
``[14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4]`` (pelvis, right leg, left leg, spine,
neck, head, head top, left arm, right arm). Only valid frames are kept. ``poses_3d`` is ``univ_annot3``
(the standard for 3DHP PCK / AUC) unless ``universal=False``. Intrinsics: TS1-4 studio camera,
TS5-6 outdoor camera (:data:`itespy.data.cameras.MPI3DHP_INTRINSICS`).
"""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from ..skeleton import NUM_JOINTS
from .cameras import MPI3DHP_INTRINSICS, MPI3DHP_SOURCE
from .errors import DataError, DataNotFoundError, check_array, require_dir

SEQUENCES = ("TS1", "TS2", "TS3", "TS4", "TS5", "TS6")
TO_H36M = (14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4)
ACTIVITIES = {1: "Stand/Walk", 2: "Exercise", 3: "Sit on Chair", 4: "Reach/Crouch", 5: "On Floor",
              6: "Sports", 7: "Miscellaneous"}
FPS = {"TS1": 25.0, "TS2": 25.0, "TS3": 25.0, "TS4": 25.0, "TS5": 50.0, "TS6": 50.0}
KEYS = ("annot2", "annot3", "univ_annot3", "valid_frame", "activity_annotation")


def intrinsics_for(sequence: str) -> dict:
    for cam in MPI3DHP_INTRINSICS.values():
        if sequence in cam["sequences"]:
            return cam
    raise DataError(f"MPI-INF-3DHP: no intrinsics for sequence {sequence!r}; expected one of {SEQUENCES}")


def _read_mat(path: Path) -> tuple:
    """Read the annotation keys of one annot_data.mat (either flavour): (dict, 'hdf5' | 'mat')."""
    import h5py

    if h5py.is_hdf5(str(path)):
        with h5py.File(path, "r") as f:
            missing = [k for k in KEYS if k not in f]
            if missing:
                raise DataError(f"3DHP file {path}: missing key(s) {missing}; expected {list(KEYS)}, "
                                f"found {sorted(f.keys())}")
            return {k: np.asarray(f[k][()]) for k in KEYS}, "hdf5"
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(path), variable_names=list(KEYS))
    except Exception as err:
        raise DataError(f"3DHP file {path}: not a readable MATLAB file (neither v7.3/HDF5 nor classic MAT): "
                        f"{err}") from None
    missing = [k for k in KEYS if k not in mat]
    if missing:
        raise DataError(f"3DHP file {path}: missing key(s) {missing}; expected {list(KEYS)}")
    return {k: np.asarray(mat[k]) for k in KEYS}, "mat"


def _frames_joints_coords(arr: np.ndarray, n: int, d: int, flavour: str, where: str) -> np.ndarray:
    """Rearrange an annotation array to (n, 17, d) whatever its MAT layout."""
    a = np.squeeze(np.asarray(arr))
    if n == 1 and a.ndim == 2:  # the frame axis was squeezed away
        a = a[None] if flavour == "hdf5" else a[..., None]
    if a.ndim != 3:
        raise DataError(f"{where}: expected (frames, 17, {d}) values in some axis order, got shape {np.shape(arr)}")
    perms = list(itertools.permutations(range(3)))
    if flavour == "mat":
        perms.sort(key=lambda q: q != (2, 1, 0))
    for perm in perms:
        if tuple(a.shape[i] for i in perm) == (n, NUM_JOINTS, d):
            return np.transpose(a, perm)
    raise DataError(f"{where}: expected {n} frames x 17 joints x {d} coordinates (any axis order), got shape "
                    f"{np.shape(arr)}")


def load_sequence(path, sequence: str, *, universal: bool = True) -> dict:
    """One TS folder's annot_data.mat -> valid frames in H36M-17 order: px (N,17,2), cam3d (N,17,3) mm,
    activity (N,) int, frame (N,) original index."""
    path = Path(path)
    if not path.exists():
        raise DataNotFoundError(f"3DHP: file not found: {path} (expected TS1..TS6/annot_data.mat)")
    raw, flavour = _read_mat(path)
    valid = np.asarray(raw["valid_frame"]).reshape(-1)
    n = len(valid)
    if n == 0:
        raise DataError(f"3DHP file {path}: valid_frame is empty (no frames)")
    activity = np.asarray(raw["activity_annotation"]).reshape(-1)
    if len(activity) != n:
        raise DataError(f"3DHP file {path}: activity_annotation has {len(activity)} entries, expected {n} "
                        f"(one per frame, like valid_frame)")
    a2 = _frames_joints_coords(raw["annot2"], n, 2, flavour, f"3DHP file {path}: key 'annot2'")
    a3 = _frames_joints_coords(raw["annot3"], n, 3, flavour, f"3DHP file {path}: key 'annot3'")
    u3 = _frames_joints_coords(raw["univ_annot3"], n, 3, flavour, f"3DHP file {path}: key 'univ_annot3'")
    keep = np.flatnonzero(valid.astype(float) > 0.5)
    if len(keep) == 0:
        raise DataError(f"3DHP file {path}: no valid frames (valid_frame is all 0)")
    idx = list(TO_H36M)
    px = check_array(a2[keep][:, idx].astype(np.float64), f"3DHP file {path}: key 'annot2' (valid frames)",
                     (len(keep), NUM_JOINTS, 2))
    real = check_array(a3[keep][:, idx].astype(np.float64), f"3DHP file {path}: key 'annot3' (valid frames)",
                       (len(keep), NUM_JOINTS, 3))
    univ = check_array(u3[keep][:, idx].astype(np.float64), f"3DHP file {path}: key 'univ_annot3' (valid frames)",
                       (len(keep), NUM_JOINTS, 3))
    if (real[..., 2] <= 0).any():
        raise DataError(f"3DHP file {path}: key 'annot3' has joints with depth <= 0 mm; expected camera-frame "
                        f"millimetres in front of the camera")
    cam3d = (univ - univ[:, :1] + real[:, :1]) if universal else real
    act = activity[keep].astype(int)
    return {"px": px, "cam3d": cam3d, "activity": act, "frame": keep, "flavour": flavour,
            "actions": np.array([ACTIVITIES.get(a, f"activity{a}") for a in act])}


def find_test_root(directory) -> Path:
    d = require_dir(directory, "MPI-INF-3DHP test-set folder")
    if not (d / "TS1").exists() and (d / "mpi_inf_3dhp_test_set").is_dir():
        d = d / "mpi_inf_3dhp_test_set"
    return d


def mpi3dhp_raw_test(directory, *, sequences=SEQUENCES, universal: bool = True):
    """The 3DHP test set as one RawSplit (subjects = 'TS1'..'TS6', actions = activity names)."""
    from .poseset import RawSplit

    d = find_test_root(directory)
    missing = [s for s in sequences if not (d / s / "annot_data.mat").exists()]
    if missing:
        raise DataNotFoundError(f"MPI-INF-3DHP folder {d}: missing {', '.join(f'{s}/annot_data.mat' for s in missing)} "
                                f"(expected {', '.join(sequences)} each with annot_data.mat; see docs/data.md)")
    parts = {k: [] for k in ("px", "cam3d", "focal", "subject", "action", "sequence", "frame", "activity")}
    flavours = {}
    for s in sequences:
        seq = load_sequence(d / s / "annot_data.mat", s, universal=universal)
        n = len(seq["px"])
        parts["px"].append(seq["px"])
        parts["cam3d"].append(seq["cam3d"])
        parts["focal"].append(np.broadcast_to(np.array(intrinsics_for(s)["focal_length"]), (n, 2)))
        parts["subject"].append(np.full(n, s))
        parts["action"].append(seq["actions"])
        parts["sequence"].append(np.full(n, s))
        parts["frame"].append(seq["frame"])
        parts["activity"].append(seq["activity"])
        flavours[s] = seq["flavour"]
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    meta = {"source": "3dhp", "origin": str(d), "split_rule": "test only (TS1-TS6)", "fps": FPS,
            "poses_3d_key": "univ_annot3" if universal else "annot3", "mat_flavours": flavours,
            "cameras": {k: {kk: vv for kk, vv in v.items()} for k, v in MPI3DHP_INTRINSICS.items()},
            "camera_source": MPI3DHP_SOURCE}
    return RawSplit(cat["px"], cat["focal"], cat["cam3d"], cat["subject"], cat["action"],
                    {"sequence": cat["sequence"], "frame": cat["frame"], "activity": cat["activity"]}, meta)

"""Human3.6M in the VideoPose3D format (``h36m:DIR`` with ground-truth 2D, ``h36m-cpn:DIR`` with
CPN-detected 2D -- Table 1's IMG column).

Files in DIR (made by VideoPose3D's ``data/prepare_data_h36m.py`` and its 2D downloads; see docs/data.md):

* ``data_3d_h36m.npz``: key ``positions_3d`` = pickled dict subject -> action -> (T, 32, 3) float,
  world frame, **metres** (np.savez of a dict, so ``allow_pickle=True`` is needed).
* ``data_2d_h36m_gt.npz`` / ``data_2d_h36m_cpn_ft_h36m_dbb.npz``: key ``positions_2d`` = dict
  subject -> action -> list of 4 arrays (T', 17, 2) **pixels**, one per camera in the order
  54138969, 55011271, 58860488, 60457274; key ``metadata`` = dict with ``keypoints_symmetry``.

What the loader does (as VideoPose3D ``run.py``): keep joints [0,1,2,3,6,7,8,12,13,14,15,17,18,19,25,26,27]
of 32 (the H36M-17 order), world -> camera with the per-subject extrinsics of
:mod:`itespy.data.cameras` (x_cam = R^T (X - t), R from the orientation quaternion, t in mm),
truncate each 2D sequence to its 3D length (2D shorter than 3D is an error), skip S11 'Directions' for
CPN (its video is corrupt; the reference code drops it), every ``stride``-th frame. Splits: train S1,
S5, S6, S7, S8; test S9, S11. Action labels drop the take number ('Sitting 1' -> 'Sitting') and use
the standard names ('TakingPhoto' -> 'Photo', 'WalkingDog' -> 'WalkDog').
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..skeleton import LEFT_JOINTS, NUM_JOINTS, RIGHT_JOINTS
from .cameras import H36M_CAMERA_IDS, H36M_SOURCE, h36m_camera
from .errors import DataError, check_array, require_dir, require_file

FILE_3D = "data_3d_h36m.npz"
FILE_2D = {"gt": "data_2d_h36m_gt.npz", "cpn": "data_2d_h36m_cpn_ft_h36m_dbb.npz"}
KEEP_JOINTS = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
TRAIN_SUBJECTS = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS = ("S9", "S11")
ACTION_ALIASES = {"TakingPhoto": "Photo", "WalkingDog": "WalkDog"}
FPS = 50.0
# (subject, exact action key) pairs the reference code drops for detected 2D ('Directions 1' is kept).
CPN_SKIP = {("S11", "Directions")}


def action_label(action: str) -> str:
    """'Sitting 1' -> 'Sitting'; 'TakingPhoto' -> 'Photo'; 'WalkingDog 1' -> 'WalkDog'."""
    base = action.split(" ")[0]
    return ACTION_ALIASES.get(base, base)


def _load_pickled_dict(path: Path, key: str) -> dict:
    try:
        with np.load(path, allow_pickle=True) as data:
            if key not in data.files:
                raise DataError(f"Human3.6M file {path}: missing key {key!r}; found {data.files}")
            obj = data[key]
            meta = data["metadata"].item() if "metadata" in data.files else None
    except DataError:
        raise
    except Exception as err:
        raise DataError(f"Human3.6M file {path}: cannot be read as an .npz file ({err})") from None
    try:
        value = obj.item()
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise DataError(f"Human3.6M file {path}: key {key!r} must hold a dict subject -> action -> array "
                        f"(VideoPose3D format), got {type(value).__name__}")
    return value, meta


def load_h36m_3d(directory) -> dict:
    """positions_3d dict (subject -> action -> (T, 32, 3) metres, world)."""
    d = require_dir(directory, "Human3.6M folder")
    data, _ = _load_pickled_dict(require_file(d / FILE_3D, "Human3.6M 3D poses"), "positions_3d")
    return data


def load_h36m_2d(directory, detections: str = "gt") -> tuple:
    """(positions_2d dict subject -> action -> [4 x (T, 17, 2) px], metadata dict)."""
    if detections not in FILE_2D:
        raise DataError(f"Human3.6M: unknown 2D detections {detections!r}; expected one of {list(FILE_2D)}")
    d = require_dir(directory, "Human3.6M folder")
    path = require_file(d / FILE_2D[detections], f"Human3.6M 2D keypoints ({detections})")
    data, meta = _load_pickled_dict(path, "positions_2d")
    if meta is not None:
        sym = meta.get("keypoints_symmetry") if isinstance(meta, dict) else None
        if sym is not None and (list(sym[0]) != list(LEFT_JOINTS) or list(sym[1]) != list(RIGHT_JOINTS)):
            raise DataError(f"Human3.6M file {path}: metadata keypoints_symmetry is {[list(s) for s in sym]}, "
                            f"expected [{list(LEFT_JOINTS)}, {list(RIGHT_JOINTS)}] (H36M-17 order)")
        nj = meta.get("num_joints") if isinstance(meta, dict) else None
        if nj is not None and nj != NUM_JOINTS:
            raise DataError(f"Human3.6M file {path}: metadata num_joints = {nj}, expected {NUM_JOINTS}")
    return data, (meta or {})


def world_to_camera_h36m(positions_world_m: np.ndarray, subject: str, cam_index: int) -> np.ndarray:
    """(T, J, 3) world metres -> camera frame millimetres for H36M camera ``cam_index`` of ``subject``."""
    return h36m_camera(subject, cam_index).world_to_camera(np.asarray(positions_world_m, np.float64) * 1000.0)


def _sequence(subject, action, cam, pos3d_m, kp2d, path2d, stride):
    where = f"{path2d} [{subject!r}][{action!r}] camera {cam} ({H36M_CAMERA_IDS[cam]})"
    kp = check_array(kp2d, where, (None, NUM_JOINTS, 2))
    t = len(pos3d_m)
    if len(kp) < t:
        raise DataError(f"{where}: 2D sequence has {len(kp)} frames, shorter than the {t} frames of 3D poses "
                        f"(expected at least as many; VideoPose3D truncates longer 2D to the 3D length)")
    kp = kp[:t:stride]
    cam3d = world_to_camera_h36m(pos3d_m[::stride], subject, cam)
    return cam3d, kp


def h36m_raw_splits(directory, *, detections: str = "gt", stride: int = 1, subjects_train=TRAIN_SUBJECTS,
                    subjects_test=TEST_SUBJECTS, cameras=(0, 1, 2, 3)) -> dict:
    """{'train': RawSplit, 'test': RawSplit} for Human3.6M in the VideoPose3D format (module docstring)."""
    from .poseset import RawSplit

    d = require_dir(directory, "Human3.6M folder")
    pos3d = load_h36m_3d(d)
    pos2d, meta2d = load_h36m_2d(d, detections)
    path3d, path2d = d / FILE_3D, d / FILE_2D[detections]
    for split, subjects in (("train", subjects_train), ("test", subjects_test)):  # all labels first
        for subject in subjects:
            if subject not in pos3d:
                raise DataError(f"{path3d}: subject {subject!r} missing from positions_3d "
                                f"(found {sorted(pos3d)}); expected {list(subjects)} for the {split} split")
            if subject not in pos2d:
                raise DataError(f"{path2d}: subject {subject!r} missing from positions_2d (found {sorted(pos2d)})")
    out = {}
    for split, subjects in (("train", subjects_train), ("test", subjects_test)):
        chunks = {k: [] for k in ("cam3d", "px", "focal", "subject", "action", "sequence", "frame", "camera")}
        for subject in subjects:
            for action in sorted(pos3d[subject]):
                if detections != "gt" and (subject, action) in CPN_SKIP:
                    continue  # corrupt video: the reference code discards it for detected 2D
                p3 = check_array(pos3d[subject][action], f"{path3d} [{subject!r}][{action!r}]", (None, None, 3))
                if p3.shape[1] != 32:
                    raise DataError(f"{path3d} [{subject!r}][{action!r}]: expected (T, 32, 3) poses with the 32 "
                                    f"Human3.6M joints, got {p3.shape}")
                if len(p3) == 0:
                    raise DataError(f"{path3d} [{subject!r}][{action!r}]: sequence has no frames")
                p3 = p3[:, list(KEEP_JOINTS)]
                if action not in pos2d[subject]:
                    raise DataError(f"{path2d}: action {action!r} of subject {subject!r} missing from positions_2d")
                views = pos2d[subject][action]
                if len(views) != 4:
                    raise DataError(f"{path2d} [{subject!r}][{action!r}]: expected a list of 4 camera arrays, "
                                    f"got {len(views)}")
                for cam in cameras:
                    c3, kp = _sequence(subject, action, cam, p3, views[cam], path2d, stride)
                    n = len(kp)
                    camera = h36m_camera(subject, cam)
                    chunks["cam3d"].append(c3.astype(np.float32))  # float32: ~1e-3 mm, halves memory
                    chunks["px"].append(np.asarray(kp, dtype=np.float32))
                    chunks["focal"].append(np.broadcast_to(camera.focal, (n, 2)))
                    chunks["subject"].append(np.full(n, subject))
                    chunks["action"].append(np.full(n, action_label(action)))
                    chunks["sequence"].append(np.full(n, f"{subject}/{action}/{H36M_CAMERA_IDS[cam]}"))
                    chunks["frame"].append(np.arange(0, len(p3), stride)[:n])
                    chunks["camera"].append(np.full(n, cam))
        if not chunks["px"]:
            raise DataError(f"Human3.6M folder {d}: no sequences for the {split} split ({list(subjects)})")
        cat = {k: np.concatenate(v) for k, v in chunks.items()}
        meta = {"source": "h36m" if detections == "gt" else "h36m-cpn", "origin": str(d), "fps": FPS / stride,
                "detections": detections, "split_rule": "by subject", "subjects": list(subjects),
                "cameras": {s: [h36m_camera(s, c).to_dict() for c in cameras] for s in subjects},
                "camera_source": H36M_SOURCE, "files": [str(path3d), str(path2d)]}
        out[split] = RawSplit(cat["px"], cat["focal"], cat["cam3d"], cat["subject"], cat["action"],
                              {"sequence": cat["sequence"], "frame": cat["frame"], "camera": cat["camera"]}, meta)
    return out


def reprojection_error_px(directory, subjects=None, max_frames: int = 200) -> dict:
    """Consistency check of a Human3.6M folder: project the 3D poses with the camera table (with
    distortion) and compare with the ground-truth 2D file. Returns {(subject, camera): mean px error}.
    On correct data this is well below a pixel; large values mean wrong cameras or mismatched files."""
    pos3d = load_h36m_3d(directory)
    pos2d, _ = load_h36m_2d(directory, "gt")
    out = {}
    for subject in subjects or sorted(set(pos3d) & set(pos2d)):
        for cam in range(4):
            errs = []
            for action in sorted(pos3d[subject]):
                p3 = np.asarray(pos3d[subject][action])[:max_frames, list(KEEP_JOINTS)]
                kp = np.asarray(pos2d[subject][action][cam])[:len(p3)]
                camera = h36m_camera(subject, cam)
                proj = camera.project(camera.world_to_camera(p3 * 1000.0))
                errs.append(np.linalg.norm(proj - kp, axis=-1).mean())
            out[(subject, H36M_CAMERA_IDS[cam])] = float(np.mean(errs))
    return out

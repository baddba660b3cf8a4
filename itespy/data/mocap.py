"""Motion capture in world coordinates: the Bandai-format npz (``mocap:PATH.npz``), BVH folders (``bvh:DIR``,
parsed by :mod:`itespy.data.bvh`), bone-length augmentation, clip-level splits and the virtual cameras.

npz format (exactly as /work/shared/data/bandai/README.md; load with ``np.load``, no pickle):
``positions`` float (N,17,3) mm, world frame, Z up, H36M-17 order; ``clip`` int (N,) index into
``clip_names`` (C,); ``frame`` int (N,); ``clip_actor`` (C,) style/actor label; ``clip_action`` (C,)
content label; optional ``joint_names`` (17,) and ``fps``. Rows sorted by clip, then frame.

Splits (never by frame): clips whose ``clip_actor`` is in ``test_styles`` (default ``('feminine',)``)
form the test split. 'feminine' is one of the three styles recorded in both Bandai datasets (with
'normal' and 'active'), so the test set has all 10 dataset-2 contents plus 8 dataset-1 ones -- 18
actions, 417 clips, 19,752 of 139,975 rows = 14 % -- while the neutral 'normal' style stays in
training. Performers are not identified per clip, so a style is the closest thing to a held-out actor; every other clip is training data. When no clip has such a
style (or all do), ``max(1, round(0.2 C))`` clips chosen by CRC32 of the clip name (deterministic,
seed-independent) form the test split.
"""
from __future__ import annotations

import hashlib
import os
import warnings
import zlib
from pathlib import Path

import numpy as np

from ..skeleton import BONES, JOINT_NAMES, NUM_JOINTS
from .bvh import (BANDAI_JOINT_MAP, BANDAI_REQUIRED, BVH_CONVERTER_VERSION, BVHJoint,  # noqa: F401 -- the BVH
                  bvh_forward_kinematics, bvh_to_h36m, convert_bvh_files, parse_bvh)  # names, re-exported
from .errors import DataError, atomic_save_npz, check_array, require_dir, require_file

NPZ_KEYS = ("positions", "clip", "frame", "clip_names", "clip_actor", "clip_action")
DEFAULT_TEST_STYLES = ("feminine",)



# =============================================================================================== npz
def load_mocap_npz(path) -> dict:
    """Load and validate a Bandai-format npz (see module docstring). Returns a dict of arrays."""
    p = require_file(path, "mocap npz")
    try:
        data = np.load(p, allow_pickle=False)
    except Exception as err:  # zipfile / pickle / format errors
        raise DataError(f"mocap npz {p}: cannot be read as an .npz file ({err})") from None
    with data:
        missing = [k for k in NPZ_KEYS if k not in data.files]
        if missing:
            raise DataError(f"mocap npz {p}: missing key(s) {missing}; expected keys {list(NPZ_KEYS)} "
                            f"(+ optional joint_names, fps) as in the Bandai README; found {data.files}")
        out = {k: data[k] for k in data.files}
    n = len(out["positions"]) if out["positions"].ndim else 0
    pos = check_array(out["positions"], f"mocap npz {p}: key 'positions'", (None, NUM_JOINTS, 3))
    if n == 0:
        raise DataError(f"mocap npz {p}: key 'positions' has no frames")
    out["positions"] = pos.astype(np.float32)
    c = len(np.atleast_1d(out["clip_names"]))
    for key in ("clip", "frame"):
        a = check_array(out[key], f"mocap npz {p}: key '{key}'", (n,))
        if not np.issubdtype(a.dtype, np.integer):
            raise DataError(f"mocap npz {p}: key '{key}' must be integers, got {a.dtype}")
        out[key] = a.astype(np.int64)
    for key in ("clip_names", "clip_actor", "clip_action"):
        out[key] = check_array(out[key], f"mocap npz {p}: key '{key}'", (c,)).astype(str)
    if out["clip"].min() < 0 or out["clip"].max() >= c:
        raise DataError(f"mocap npz {p}: key 'clip' has indices outside [0, {c}) (len(clip_names) = {c})")
    if "joint_names" in out:
        names = np.atleast_1d(out["joint_names"]).astype(str)
        if names.shape != (NUM_JOINTS,):
            raise DataError(f"mocap npz {p}: key 'joint_names' must list 17 joints, got shape {names.shape}")
        if tuple(names) != JOINT_NAMES:
            raise DataError(f"mocap npz {p}: key 'joint_names' is {names.tolist()}, expected the H36M-17 "
                            f"order {list(JOINT_NAMES)}")
    out["fps"] = float(out["fps"]) if "fps" in out else None
    out["source_path"] = str(p)
    return out


# =============================================================================================== BVH folders
def _may_write(folder: Path) -> bool:
    """True when ``folder`` (or its nearest existing parent) is writable *and* not marked read-only by its
    mode bits -- so a root process does not write caches into read-only shared data."""
    p = Path(folder)
    while not p.exists() and p != p.parent:
        p = p.parent
    return os.access(p, os.W_OK) and bool(p.stat().st_mode & 0o222)


def load_bvh_dir(directory, cache_dir=None, step: int = 1) -> dict:
    """All ``*.bvh`` in ``directory`` in the npz format, cached as ``bvh_<hash>.npz`` in ``cache_dir``
    (default ``DIR/.itespy_cache``; written atomically; skipped with a warning when the folder is not
    writable or is marked read-only -- e.g. shared data, even for root).
    The cache key covers file names, sizes, mtimes, ``step`` and the converter version."""
    d = require_dir(directory, "BVH folder")
    files = sorted(d.glob("*.bvh"))
    if not files:
        raise DataError(f"BVH folder {d}: no *.bvh files found")
    h = hashlib.sha1(f"v{BVH_CONVERTER_VERSION}/step{step}".encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    cache = Path(cache_dir) if cache_dir is not None else d / ".itespy_cache"
    cache_file = cache / f"bvh_{h.hexdigest()[:16]}.npz"
    if cache_file.exists():
        try:
            out = load_mocap_npz(cache_file)
            out["from_cache"] = True
            return out
        except DataError:
            pass  # corrupt cache: rebuild
    arrays = convert_bvh_files(files, step=step)
    if not _may_write(cache):
        warnings.warn(f"BVH cache not written: {cache} is in a read-only folder; pass cache_dir= to a writable "
                      f"folder to cache the conversion", stacklevel=2)
    else:
        try:
            atomic_save_npz(cache_file, **arrays)
        except OSError as err:
            warnings.warn(f"BVH cache not written ({cache_file}: {err}); pass cache_dir= to a writable folder",
                          stacklevel=2)
    out = {k: np.asarray(v) for k, v in arrays.items()}
    out["fps"] = float(arrays["fps"])
    out["source_path"] = str(d)
    out["from_cache"] = False
    return out


# =============================================================================================== augmentation
# Bone groups (by child joint index) sharing one factor; left/right share it (plus 1 % asymmetry).
BONE_GROUPS = {"hip_width": (1, 4), "thigh": (2, 5), "shank": (3, 6), "lower_spine": (7,), "upper_spine": (8,),
               "neck": (9,), "head": (10,), "shoulder_width": (11, 14), "upper_arm": (12, 15), "forearm": (13, 16)}
# (mean factor, sd of log factor). Widths are widened on average: the Bandai character's hip and
# shoulder joints are much closer together than Human3.6M's (README: 129 mm / 200 mm apart).
BONE_AUGMENT = {"hip_width": (1.3, 0.15), "shoulder_width": (1.15, 0.12), "neck": (1.0, 0.08), "head": (1.0, 0.08)}
BONE_AUGMENT_DEFAULT = (1.0, 0.05)
GLOBAL_SCALE_SD = 0.06
# Both splits are augmented, each clip with its own seeded factors: a model is tested on the same kind of
# bodies it was trained on (augmenting only the training split made the test bodies narrower, hip 129 vs
# 170 mm, a shape shift no user asked for). Separate seed keys keep the splits' factors independent.
AUGMENT_SEED_KEY = {"train": 4112, "test": 4115}


def bone_length_factors(n_sequences: int, rng: np.random.Generator) -> np.ndarray:
    """(n_sequences, 17) per-bone length factors (index = child joint; column 0 unused, = 1)."""
    f = np.ones((n_sequences, NUM_JOINTS))
    glob = np.exp(np.clip(rng.normal(0, GLOBAL_SCALE_SD, size=n_sequences), -2.5 * GLOBAL_SCALE_SD,
                          2.5 * GLOBAL_SCALE_SD))
    for group, children in BONE_GROUPS.items():
        mean, sd = BONE_AUGMENT.get(group, BONE_AUGMENT_DEFAULT)
        g = mean * np.exp(np.clip(rng.normal(0, sd, size=n_sequences), -2.5 * sd, 2.5 * sd))
        for c in children:
            asym = 1 + np.clip(rng.normal(0, 0.01, size=n_sequences), -0.025, 0.025) if len(children) == 2 else 1
            f[:, c] = glob * g * asym
    return f


def rescale_bones(positions: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Scale every bone (parent -> child) by ``factors[..., child]`` along the kinematic chain; the root
    stays where it is and joint angles are unchanged. positions (N,17,3), factors (N,17)."""
    pos = np.asarray(positions, dtype=np.float64)
    out = pos.copy()
    for parent, child in BONES:  # parents come before children in the H36M-17 order
        out[:, child] = out[:, parent] + factors[:, child, None] * (pos[:, child] - pos[:, parent])
    return out


def augment_bone_lengths(positions: np.ndarray, sequence: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Bone-length augmentation with one seeded factor set per sequence (clip)."""
    _, inverse = np.unique(np.asarray(sequence), return_inverse=True)
    factors = bone_length_factors(inverse.max() + 1, rng)
    return rescale_bones(positions, factors[inverse]).astype(np.float32)


# =============================================================================================== splits
def split_clips(clip_names, clip_actor, test_styles=DEFAULT_TEST_STYLES) -> np.ndarray:
    """Boolean (C,) 'is test clip' (see module docstring for the rule)."""
    names = np.asarray(clip_names, dtype=str)
    c = len(names)
    if c < 2:
        raise DataError(f"mocap: need at least 2 clips to split train/test by clip, got {c}")
    is_test = np.isin(np.asarray(clip_actor, dtype=str), list(test_styles or ()))
    if is_test.any() and not is_test.all():
        return is_test
    order = np.argsort([zlib.crc32(n.encode()) for n in names], kind="stable")
    k = min(c - 1, max(1, int(round(0.2 * c))))
    is_test = np.zeros(c, dtype=bool)
    is_test[order[:k]] = True
    return is_test


def mocap_raw_splits_from_arrays(data: dict, *, seed: int = 0, views: int = 1, augment_bones: bool = True,
                                 test_styles=DEFAULT_TEST_STYLES, min_clip_frames: int = 1,
                                 source: str = "mocap", camera_height_mm=None) -> dict:
    """Validated npz-format arrays -> {'train': RawSplit, 'test': RawSplit} seen through a virtual rig.

    ``camera_height_mm``: (low, high) range of the virtual cameras' heights (default the H36M-like rig's
    1.0-1.8 m), for experiments on how the view's elevation affects the depth sign."""
    from .cameras import make_virtual_rig, view_through_rig
    from .poseset import RawSplit

    where = data.get("source_path", source)
    counts = np.bincount(data["clip"], minlength=len(data["clip_names"]))
    short = np.flatnonzero((counts > 0) & (counts < min_clip_frames))
    if len(short):
        raise DataError(f"{where}: clip {data['clip_names'][short[0]]!r} has {counts[short[0]]} frames, "
                        f"fewer than the {min_clip_frames} needed ({len(short)} such clips)")
    is_test_clip = split_clips(data["clip_names"], data["clip_actor"], test_styles)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 4111]))
    rig = make_virtual_rig(rng) if camera_height_mm is None else make_virtual_rig(rng, height_mm=tuple(camera_height_mm))
    meta = {"source": source, "origin": str(where), "fps": data.get("fps"), "seed": seed, "views": views,
            "cameras": [c.to_dict() for c in rig], "split_rule": "by clip style",
            "test_styles": sorted(set(data["clip_actor"][is_test_clip].tolist())),
            "test_clips": int(is_test_clip.sum()), "train_clips": int((~is_test_clip).sum()),
            "augment_bones": {"train": bool(augment_bones), "test": bool(augment_bones)}}
    out = {}
    for split, clip_mask in (("train", ~is_test_clip), ("test", is_test_clip)):
        rows = np.flatnonzero(clip_mask[data["clip"]])
        clip = data["clip"][rows]
        seq = data["clip_names"][clip]
        pos = data["positions"][rows]
        if augment_bones:  # both splits: one body-shape distribution for training and testing (see above)
            pos = augment_bone_lengths(pos, seq, np.random.default_rng(np.random.SeedSequence(
                [int(seed), AUGMENT_SEED_KEY[split]])))
        srng = np.random.default_rng(np.random.SeedSequence([int(seed), 4113 if split == "train" else 4114]))
        cam3d, px, focal, r, cam_idx = view_through_rig(pos, seq, rig, srng, views=views)
        out[split] = RawSplit(px, focal, cam3d, data["clip_actor"][clip[r]], data["clip_action"][clip[r]],
                              {"sequence": seq[r], "frame": data["frame"][rows][r], "camera": cam_idx}, dict(meta))
    return out


def mocap_raw_splits(path, *, seed: int = 0, **kwargs) -> dict:
    """``mocap:PATH.npz``: Bandai-format npz -> train/test RawSplits (see module docstring)."""
    return mocap_raw_splits_from_arrays(load_mocap_npz(path), seed=seed, source="mocap", **kwargs)


def bvh_raw_splits(directory, *, seed: int = 0, cache_dir=None, step: int = 1, **kwargs) -> dict:
    """``bvh:DIR``: every BVH file of DIR, converted (cached) to the npz format, then as mocap."""
    data = load_bvh_dir(directory, cache_dir=cache_dir, step=step)
    return mocap_raw_splits_from_arrays(data, seed=seed, source="bvh", **kwargs)

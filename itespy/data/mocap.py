"""Motion capture in world coordinates: the Bandai-format npz (``mocap:PATH.npz``), a BVH parser with
forward kinematics (``bvh:DIR``), bone-length augmentation, clip-level splits and the virtual cameras.

npz format (exactly as /work/shared/data/bandai/README.md; load with ``np.load``, no pickle):
``positions`` float (N,17,3) mm, world frame, Z up, H36M-17 order; ``clip`` int (N,) index into
``clip_names`` (C,); ``frame`` int (N,); ``clip_actor`` (C,) style/actor label; ``clip_action`` (C,)
content label; optional ``joint_names`` (17,) and ``fps``. Rows sorted by clip, then frame.

BVH conventions (Bandai Namco Research Motion dataset rig): centimetres, Y up; each joint's local
rotation is the product of its rotation channels in channel order (``Zrotation Xrotation Yrotation`` ->
R = Rz Rx Ry, degrees); position channels *replace* the OFFSET (the Hips OFFSET in the header is
ignored); global R = R_parent R_local, p = p_parent + R_parent t_local. Output ``(x, y, z)_mm =
10 (x, -z, y)_bvh`` (Z up). Head top and nose are synthesized from the Head joint as in the README.

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
import re
import warnings
import zlib
from pathlib import Path

import numpy as np

from ..skeleton import BONES, JOINT_NAMES, NUM_JOINTS
from .spec import DataError, atomic_save_npz, check_array, require_dir, require_file

NPZ_KEYS = ("positions", "clip", "frame", "clip_names", "clip_actor", "clip_action")
DEFAULT_TEST_STYLES = ("feminine",)
BVH_CONVERTER_VERSION = 1

# H36M-17 joint -> Bandai BVH joint (None: synthesized / averaged, see bvh_to_h36m).
BANDAI_JOINT_MAP = {0: "Hips", 1: "UpperLeg_R", 2: "LowerLeg_R", 3: "Foot_R", 4: "UpperLeg_L", 5: "LowerLeg_L",
                    6: "Foot_L", 8: "Neck", 11: "UpperArm_L", 12: "LowerArm_L", 13: "Hand_L", 14: "UpperArm_R",
                    15: "LowerArm_R", 16: "Hand_R"}
BANDAI_REQUIRED = tuple(BANDAI_JOINT_MAP.values()) + ("Spine", "Chest", "Head")
HEAD_TOP_OFFSET = (2.5, 0.0, 0.0)  # in units of |Head OFFSET|, Head joint frame (+X up the head)
NOSE_OFFSET = (0.6, 1.0, 0.0)  # +Y out of the face


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


# =============================================================================================== BVH
class BVHJoint:
    __slots__ = ("name", "parent", "offset", "channels", "channel_start", "end_site")

    def __init__(self, name, parent):
        self.name, self.parent = name, parent
        self.offset = np.zeros(3)
        self.channels: list = []
        self.channel_start = 0
        self.end_site = None


def parse_bvh(path) -> dict:
    """Parse a BVH file: {'joints': [BVHJoint] (parents first), 'motion': (F, channels) float64,
    'frame_time': float}. Raises DataError with the file and line for malformed files."""
    p = require_file(path, "BVH file")
    text = p.read_text(errors="replace")
    m = re.search(r"^\s*MOTION\s*$", text, flags=re.M)
    if not text.lstrip().startswith("HIERARCHY") or m is None:
        raise DataError(f"BVH file {p}: expected a 'HIERARCHY' section followed by 'MOTION'")
    header, motion_text = text[:m.start()], text[m.end():]
    tokens = header.split()[1:]
    joints: list = []
    stack: list = []
    i, n_channels, current = 0, 0, None

    def bad(msg):
        return DataError(f"BVH file {p}: {msg} (near token {i}: {' '.join(tokens[max(0, i - 3):i + 3])!r})")

    try:
        while i < len(tokens):
            tok = tokens[i]
            if tok in ("ROOT", "JOINT"):
                if tok == "ROOT" and joints:
                    raise bad("more than one ROOT is not supported")
                current = BVHJoint(tokens[i + 1], stack[-1] if stack else -1)
                joints.append(current)
                i += 2
            elif tok == "End":
                if tokens[i + 1] != "Site":
                    raise bad("expected 'End Site'")
                current = "end"
                i += 2
            elif tok == "{":
                stack.append(len(joints) - 1 if current != "end" else ("end", len(joints) - 1))
                i += 1
            elif tok == "}":
                if not stack:
                    raise bad("unbalanced '}'")
                stack.pop()
                i += 1
            elif tok == "OFFSET":
                vals = np.array([float(v) for v in tokens[i + 1:i + 4]])
                if isinstance(stack[-1], tuple):
                    joints[stack[-1][1]].end_site = vals
                else:
                    joints[stack[-1]].offset = vals
                i += 4
            elif tok == "CHANNELS":
                k = int(tokens[i + 1])
                j = joints[stack[-1]]
                j.channels = tokens[i + 2:i + 2 + k]
                j.channel_start = n_channels
                n_channels += k
                i += 2 + k
            else:
                raise bad(f"unexpected token {tok!r}")
    except (IndexError, ValueError) as err:
        if isinstance(err, DataError):
            raise
        raise bad(f"malformed HIERARCHY ({err})") from None
    if stack:
        raise DataError(f"BVH file {p}: unbalanced braces in HIERARCHY")
    # Fix parent indices: stack holds joint indices, End Site entries are tuples and never parents.
    fm = re.search(r"Frames:\s*(\d+)", motion_text)
    tm = re.search(r"Frame\s+Time:\s*([0-9.eE+-]+)", motion_text)
    if fm is None or tm is None:
        raise DataError(f"BVH file {p}: MOTION section needs 'Frames:' and 'Frame Time:' lines")
    n_frames = int(fm.group(1))
    body = motion_text[tm.end():]
    try:
        values = np.array(body.split(), dtype=np.float64)
    except ValueError:
        raise DataError(f"BVH file {p}: MOTION data contains non-numeric values") from None
    if n_frames == 0:
        raise DataError(f"BVH file {p}: 'Frames: 0' -- the clip has no frames")
    if values.size != n_frames * n_channels:
        got = values.size / max(n_channels, 1)
        raise DataError(f"BVH file {p}: expected {n_frames} frames x {n_channels} channels = "
                        f"{n_frames * n_channels} numbers after 'Frame Time', got {values.size} "
                        f"(= {got:.2f} frames); the file is truncated or its header is wrong")
    motion = values.reshape(n_frames, n_channels)
    if not np.isfinite(motion).all():
        raise DataError(f"BVH file {p}: MOTION data contains NaN/inf values")
    return {"joints": joints, "motion": motion, "frame_time": float(tm.group(1)), "path": str(p)}


def _axis_rotation(axis: str, deg: np.ndarray) -> np.ndarray:
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    if axis == "X":
        m = [o, z, z, z, c, -s, z, s, c]
    elif axis == "Y":
        m = [c, z, s, z, o, z, -s, z, c]
    else:
        m = [c, -s, z, s, c, z, z, z, o]
    return np.stack(m, -1).reshape(a.shape + (3, 3))


def bvh_forward_kinematics(bvh: dict) -> tuple:
    """Global joint positions (F, J, 3) and rotations (F, J, 3, 3) in BVH units/axes."""
    joints, motion = bvh["joints"], bvh["motion"]
    f = len(motion)
    pos = np.zeros((f, len(joints), 3))
    rot = np.zeros((f, len(joints), 3, 3))
    for ji, j in enumerate(joints):
        local_t = np.broadcast_to(j.offset, (f, 3)).copy()
        local_r = np.broadcast_to(np.eye(3), (f, 3, 3)).copy()
        for k, ch in enumerate(j.channels):
            col = motion[:, j.channel_start + k]
            name = ch.lower()
            if name.endswith("position"):
                local_t[:, "xyz".index(name[0])] = col
            elif name.endswith("rotation"):
                local_r = local_r @ _axis_rotation(name[0].upper(), col)
            else:
                raise DataError(f"BVH file {bvh.get('path')}: unknown channel {ch!r} of joint {j.name!r}")
        if j.parent < 0:
            pos[:, ji], rot[:, ji] = local_t, local_r
        else:
            pr = rot[:, j.parent]
            pos[:, ji] = pos[:, j.parent] + np.einsum("fij,fj->fi", pr, local_t)
            rot[:, ji] = pr @ local_r
    return pos, rot


def bvh_to_h36m(bvh: dict) -> np.ndarray:
    """Bandai-rig BVH -> H36M-17 positions (F,17,3) in mm, Z up (see the Bandai README)."""
    names = [j.name for j in bvh["joints"]]
    missing = [n for n in BANDAI_REQUIRED if n not in names]
    if missing:
        raise DataError(f"BVH file {bvh.get('path')}: joints {missing} not found; the converter expects the "
                        f"Bandai Namco rig ({sorted(BANDAI_REQUIRED)}), found {names}")
    idx = {n: i for i, n in enumerate(names)}
    pos, rot = bvh_forward_kinematics(bvh)
    out = np.zeros((len(pos), NUM_JOINTS, 3))
    for h, b in BANDAI_JOINT_MAP.items():
        out[:, h] = pos[:, idx[b]]
    out[:, 7] = 0.5 * (pos[:, idx["Spine"]] + pos[:, idx["Chest"]])
    head = idx["Head"]
    u = float(np.linalg.norm(bvh["joints"][head].offset))
    out[:, 10] = pos[:, head] + np.einsum("fij,j->fi", rot[:, head], u * np.array(HEAD_TOP_OFFSET))
    out[:, 9] = pos[:, head] + np.einsum("fij,j->fi", rot[:, head], u * np.array(NOSE_OFFSET))
    mm = 10.0 * np.stack([out[..., 0], -out[..., 2], out[..., 1]], -1)  # cm, Y up -> mm, Z up
    return mm.astype(np.float32)


def _labels_from_stem(stem: str) -> tuple:
    """'dataset-2_walk_normal_001' -> ('dataset2/dataset-2_walk_normal_001', 'normal', 'walk')."""
    m = re.fullmatch(r"dataset-(\d+)_(.+)_([^_]+)_(\d+)", stem)
    if m:
        return f"dataset{m.group(1)}/{stem}", m.group(3), m.group(2)
    return stem, "unknown", stem


def convert_bvh_files(paths, step: int = 1) -> dict:
    """Convert BVH files to the Bandai npz format (dict of arrays; every ``step``-th frame)."""
    positions, clip, frame, names, actors, actions = [], [], [], [], [], []
    fps = None
    for ci, path in enumerate(sorted(paths, key=lambda q: Path(q).name)):
        bvh = parse_bvh(path)
        pos = bvh_to_h36m(bvh)[::step]
        positions.append(pos)
        clip.append(np.full(len(pos), ci, dtype=np.int32))
        frame.append(np.arange(0, len(bvh["motion"]), step, dtype=np.int32))
        name, actor, action = _labels_from_stem(Path(path).stem)
        names.append(name), actors.append(actor), actions.append(action)
        this_fps = round(1.0 / bvh["frame_time"] / step) if bvh["frame_time"] > 0 else 0
        fps = this_fps if fps is None else fps
    return {"positions": np.concatenate(positions).astype(np.float32), "clip": np.concatenate(clip),
            "frame": np.concatenate(frame), "clip_names": np.array(names), "clip_actor": np.array(actors),
            "clip_action": np.array(actions), "joint_names": np.array(JOINT_NAMES), "fps": np.int64(fps or 0)}


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
                                 source: str = "mocap") -> dict:
    """Validated npz-format arrays -> {'train': RawSplit, 'test': RawSplit} seen through a virtual rig."""
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
    rig = make_virtual_rig(rng)
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

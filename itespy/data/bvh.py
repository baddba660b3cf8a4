"""BVH motion capture -> H36M-17 joint positions (``bvh:DIR``): a BVH parser, forward kinematics and the
Bandai Namco rig's joint mapping, with a converted-array cache beside the files.

BVH conventions (Bandai Namco Research Motion dataset rig): centimetres, Y up; each joint's local
rotation is the product of its rotation channels in channel order (``Zrotation Xrotation Yrotation`` ->
R = Rz Rx Ry, degrees); position channels *replace* the OFFSET (the Hips OFFSET in the header is
ignored); global R = R_parent R_local, p = p_parent + R_parent t_local. Output ``(x, y, z)_mm =
10 (x, -z, y)_bvh`` (Z up). Head top and nose are synthesized from the Head joint as in the README.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..skeleton import JOINT_NAMES, NUM_JOINTS
from .errors import DataError, require_file

BVH_CONVERTER_VERSION = 1

# H36M-17 joint -> Bandai BVH joint (None: synthesized / averaged, see bvh_to_h36m).
BANDAI_JOINT_MAP = {0: "Hips", 1: "UpperLeg_R", 2: "LowerLeg_R", 3: "Foot_R", 4: "UpperLeg_L", 5: "LowerLeg_L",
                    6: "Foot_L", 8: "Neck", 11: "UpperArm_L", 12: "LowerArm_L", 13: "Hand_L", 14: "UpperArm_R",
                    15: "LowerArm_R", 16: "Hand_R"}
BANDAI_REQUIRED = tuple(BANDAI_JOINT_MAP.values()) + ("Spine", "Chest", "Head")
HEAD_TOP_OFFSET = (2.5, 0.0, 0.0)  # in units of |Head OFFSET|, Head joint frame (+X up the head)
NOSE_OFFSET = (0.6, 1.0, 0.0)  # +Y out of the face


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

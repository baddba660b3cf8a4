"""The embedded default data source: plausible human motion generated in memory (no files, no network).

Model
-----
* **Subjects.** Adult body heights ~ N(1625, 65) mm (women) / N(1760, 70) mm (men) -- close to adult
  means in Western anthropometric surveys -- and segment lengths as fractions of height (after the
  Drillis-Contini / Winter segment table: thigh 0.245 H, shank 0.246 H, upper arm 0.186 H, forearm
  0.146 H; torso, neck, head and hip / shoulder widths chosen to match Human3.6M-like joint positions),
  each varied per subject by a log-normal factor (sd 4 %) and by a small left/right asymmetry (1 %).
* **Poses.** (:mod:`itespy.data.body`) A 24-angle kinematic model (plus heading) (pelvis, two spine segments, neck/head, 3-DoF hips and
  shoulders, 1-DoF knees and elbows) with forward kinematics vectorised over all frames
  (:func:`forward_kinematics`). Every angle is clipped to an anatomical range (:data:`JOINT_LIMITS`, deg).
* **Motion.** Smooth sequences from seven families: ``walk`` (gait cycle with arm swing, curved paths),
  ``turn`` (turning on the spot, stepping, head leading), ``reach`` (one or both arms to a target, trunk
  lean and knee bend for low targets), ``squat``, ``sit`` (sit down on a chair-height seat and gesture),
  ``raise-arms`` (front or side raises) and ``wave``; plus low-frequency noise on every angle.
  Feet are kept on the ground (the lowest ankle at ankle height) and planted when not walking.
* **World frame** Z-up, millimetres, random global yaw per clip; the clips are then seen through the
  virtual H36M-like rig of :mod:`itespy.data.cameras`.

Splits are by subject: ``syn01``..``syn08`` train, ``syn09``, ``syn10`` test (one woman, one man), so
20,000 train / 5,000 test frames by default (25 clips of 100 frames at a nominal 25 fps per subject).
Deterministic for a seed (numpy Generator), about a second for 50k frames.
"""
from __future__ import annotations

import numpy as np

from ..skeleton import NUM_JOINTS
from .body import ANGLES, JOINT_LIMITS, SEGMENTS, forward_kinematics, make_subjects  # noqa: F401 -- JOINT_LIMITS re-exported
from .errors import DataError
from .plausibility import (ANGLE_BOUNDS, ANGLE_NAMES, RATIO_BOUNDS, RATIO_NAMES,  # noqa: F401 -- re-exported
                           plausibility_stats, summarise_plausibility)

FPS = 25.0
FAMILIES = ("walk", "turn", "reach", "squat", "sit", "raise-arms", "wave")


# ------------------------------------------------------------------------------------------ motions
def _smooth_noise(rng, c, t, amp_deg, fmax=0.8):
    """(c, T) smooth noise: sum of 3 sinusoids, random frequencies in [0.05, fmax] Hz."""
    freq = rng.uniform(0.05, fmax, size=(c, 1, 3))
    phase = rng.uniform(0, 2 * np.pi, size=(c, 1, 3))
    amp = rng.uniform(0.3, 1.0, size=(c, 1, 3)) * amp_deg / np.sqrt(3)
    return (amp * np.sin(2 * np.pi * freq * t[None, :, None] + phase)).sum(-1)


def _u(rng, c, lo, hi):
    return rng.uniform(lo, hi, size=(c, 1))


def _ease(x):
    x = np.clip(x, 0, 1)
    return x * x * (3 - 2 * x)


def _base_angles(rng, c, t):
    """Relaxed standing with small per-clip offsets and low-frequency sway on every angle."""
    base = {k: np.zeros((c, len(t))) for k in ANGLES}
    base["knee_R"] += 4
    base["knee_L"] += 4
    base["elbow_R"] += 12
    base["elbow_L"] += 12
    base["sh_abd_R"] += 6
    base["sh_abd_L"] += 6
    base["hip_abd_R"] += 3
    base["hip_abd_L"] += 3
    base["neck_flex"] += 5
    noise_amp = {"pelvis_pitch": 3, "pelvis_roll": 2, "lumbar_flex": 8, "lumbar_lat": 4, "lumbar_twist": 6,
                 "neck_flex": 15, "neck_lat": 5, "neck_yaw": 15, "hip_flex": 3, "hip_abd": 2, "hip_rot": 5,
                 "knee": 3, "sh_flex": 8, "sh_abd": 5, "sh_rot": 10, "elbow": 10}
    for k in ANGLES:
        key = k[:-2] if k.endswith(("_R", "_L")) else k
        base[k] += rng.normal(0, 0.5, size=(c, 1)) * noise_amp[key] + _smooth_noise(rng, c, t, noise_amp[key])
    return base


def _walk(rng, p, t, heights):
    c = len(heights)
    f = _u(rng, c, 0.75, 1.05)  # gait cycles per second
    phi = 2 * np.pi * f * t + _u(rng, c, 0, 2 * np.pi)
    a_h, a_k, a_a = _u(rng, c, 14, 24), _u(rng, c, 45, 60), _u(rng, c, 10, 30)
    for side, shift in (("R", 0.0), ("L", np.pi)):
        ph = phi + shift
        p[f"hip_flex_{side}"] += 4 + a_h * np.sin(ph)
        # knee: peak flexion in early swing (thigh passing vertical), small bend after heel strike
        p[f"knee_{side}"] += 4 + a_k * np.maximum(0, np.cos(ph - 0.1)) ** 3 + 10 * np.maximum(0, np.sin(ph - 2.0)) ** 2
        sh = -a_a * np.sin(ph)
        p[f"sh_flex_{side}"] += sh
        p[f"elbow_{side}"] += 8 + 0.5 * np.maximum(sh, 0)
    p["lumbar_twist"] += 5 * np.sin(phi)
    p["pelvis_roll"] += 3 * np.sin(2 * phi)
    p["pelvis_pitch"] += _u(rng, c, 0, 8)
    turn_rate = np.deg2rad(rng.normal(0, 15, size=(c, 1)))
    yaw = turn_rate * t
    speed = _u(rng, c, 0.75, 0.9) * heights[:, None] * f  # mm / s (stride ~0.8 H)
    step = speed / FPS * np.stack([-np.sin(yaw), np.cos(yaw)], -1).transpose(2, 0, 1)
    root_xy = np.cumsum(step, axis=-1).transpose(1, 2, 0)  # (c, T, 2)
    return yaw, root_xy


def _turn(rng, p, t, heights):
    c = len(heights)
    total = t[-1] if len(t) > 1 else 1.0
    delta = np.deg2rad(_u(rng, c, 90, 200)) * rng.choice([-1.0, 1.0], size=(c, 1))
    t0, dur = _u(rng, c, 0, 0.3) * total, _u(rng, c, 0.4, 0.7) * total
    s = _ease((t - t0) / dur)
    yaw = delta * s
    active = np.clip(4 * s * (1 - s), 0, 1)  # stepping only while turning
    phi = 2 * np.pi * _u(rng, c, 1.0, 1.6) * t
    for side, shift in (("R", 0.0), ("L", np.pi)):
        lift = np.maximum(0, np.sin(phi + shift)) * active
        p[f"hip_flex_{side}"] += 25 * lift
        p[f"knee_{side}"] += 40 * lift
        p[f"hip_rot_{side}"] += 10 * active * np.sign(delta) * (1 if side == "R" else -1)
    bell = np.exp(-(((t - t0 - 0.3 * dur) / (0.3 * dur + 1e-6)) ** 2))
    p["neck_yaw"] += np.rad2deg(np.sign(delta)) * 0.45 * bell
    p["lumbar_twist"] += 15 * np.sign(delta) * bell
    return yaw, None


def _reach(rng, p, t, heights):
    c = len(heights)
    s = 0.5 - 0.5 * np.cos(2 * np.pi * _u(rng, c, 0.2, 0.5) * t + _u(rng, c, -0.5, 0.5))
    which = rng.integers(0, 3, size=c)  # 0 right, 1 left, 2 both
    flex, abd = _u(rng, c, 20, 150), _u(rng, c, 0, 70)
    low = np.clip((70 - flex) / 50, 0, 1)  # low targets: lean and bend the knees
    for side, on in (("R", which != 1), ("L", which != 0)):
        m = on[:, None] * s
        p[f"sh_flex_{side}"] += m * flex
        p[f"sh_abd_{side}"] += m * abd
        p[f"elbow_{side}"] += m * (-p[f"elbow_{side}"] + _u(rng, c, 0, 25)) + (1 - m) * 20
        p[f"sh_rot_{side}"] += m * _u(rng, c, -10, 30)
    lean = low * _u(rng, c, 10, 50) * s
    p["lumbar_flex"] += lean
    p["pelvis_pitch"] += low * _u(rng, c, 5, 30) * s
    bend = low * _u(rng, c, 0, 45) * s
    for side in "RL":
        p[f"knee_{side}"] += bend
        p[f"hip_flex_{side}"] += 0.6 * bend + p["pelvis_pitch"]
    twist_dir = np.where(which == 0, -1.0, np.where(which == 1, 1.0, 0.0))[:, None]
    p["lumbar_twist"] += twist_dir * _u(rng, c, 0, 25) * s
    p["neck_flex"] += low * 25 * s
    return np.zeros_like(s), None


def _squat_mechanics(p, knee, trunk):
    """Feet flat: shank tilt = min(35, 0.35 knee); thigh (world) = knee - tilt; hip = thigh + pelvis pitch."""
    tilt = np.minimum(35.0, 0.35 * knee)
    p["pelvis_pitch"] += trunk
    for side in "RL":
        p[f"knee_{side}"] += knee
        p[f"hip_flex_{side}"] += knee - tilt + trunk


def _squat(rng, p, t, heights):
    c = len(heights)
    s = 0.5 - 0.5 * np.cos(2 * np.pi * _u(rng, c, 0.15, 0.35) * t + _u(rng, c, -0.5, 0.5))
    depth = _u(rng, c, 0.4, 1.0)
    knee = depth * 110 * s
    _squat_mechanics(p, knee, depth * _u(rng, c, 15, 35) * s)
    for side in "RL":
        p[f"sh_flex_{side}"] += _u(rng, c, 0, 80) * s
        p[f"elbow_{side}"] += _u(rng, c, 0, 30) * s
    p["lumbar_flex"] += depth * _u(rng, c, 0, 15) * s
    return np.zeros_like(s), None


def _sit(rng, p, t, heights):
    c = len(heights)
    total = t[-1] if len(t) > 1 else 1.0
    s = _ease((t - _u(rng, c, 0, 0.2) * total) / (_u(rng, c, 0.2, 0.35) * total))
    knee = _u(rng, c, 75, 100) * s
    # standing up/down goes through a squat (trunk leans forward mid-way), seated trunk upright
    trunk = 35 * np.sin(np.pi * s) + _u(rng, c, 0, 12) * s
    tilt = np.minimum(35.0, 0.35 * knee) * (1 - s)
    p["pelvis_pitch"] += trunk
    for side in "RL":
        p[f"knee_{side}"] += knee
        p[f"hip_flex_{side}"] += knee - tilt + trunk  # seated: shank vertical, thigh level
        p[f"hip_abd_{side}"] += _u(rng, c, 0, 12) * s
    p["lumbar_flex"] += -0.5 * _u(rng, c, 0, 12) * s
    gest = _smooth_noise(rng, c, t, 35, fmax=0.6)
    for side, g in (("R", gest), ("L", -gest)):
        p[f"sh_flex_{side}"] += (_u(rng, c, 15, 45) + 0.5 * g) * s
        p[f"elbow_{side}"] += (_u(rng, c, 40, 90) + 0.5 * g) * s
    return np.zeros_like(s), None


def _raise_arms(rng, p, t, heights):
    c = len(heights)
    s = 0.5 - 0.5 * np.cos(2 * np.pi * _u(rng, c, 0.2, 0.6) * t + _u(rng, c, -0.5, 0.5))
    which = rng.integers(0, 3, size=c)
    side_raise = rng.random(size=(c, 1)) < 0.5
    top = _u(rng, c, 80, 170)
    for side, on in (("R", which != 1), ("L", which != 0)):
        m = on[:, None] * s * top
        p[f"sh_abd_{side}"] += np.where(side_raise, m, 0)
        p[f"sh_flex_{side}"] += np.where(side_raise, 0, m)
        p[f"elbow_{side}"] += _u(rng, c, -10, 20)
    p["neck_flex"] += -10 * s
    return np.zeros_like(s), None


def _wave(rng, p, t, heights):
    c = len(heights)
    up = _ease(t / (_u(rng, c, 0.2, 0.6)))
    which = rng.integers(0, 3, size=c)
    osc = np.sin(2 * np.pi * _u(rng, c, 1.2, 2.5) * t)
    for side, on in (("R", which != 1), ("L", which != 0)):
        m = on[:, None] * up
        p[f"sh_abd_{side}"] += m * _u(rng, c, 60, 120)
        p[f"sh_flex_{side}"] += m * _u(rng, c, 0, 40)
        p[f"sh_rot_{side}"] += m * (-30 + 20 * osc)
        p[f"elbow_{side}"] += m * (_u(rng, c, 40, 80) + 25 * osc)
    return np.zeros_like(up), None


_FAMILY_FN = {"walk": _walk, "turn": _turn, "reach": _reach, "squat": _squat, "sit": _sit,
              "raise-arms": _raise_arms, "wave": _wave}


# ------------------------------------------------------------------------------------------ generator
def generate(n_subjects: int = 10, clips_per_subject: int = 25, clip_len: int = 100, seed: int = 0,
             families=FAMILIES) -> dict:
    """World-frame synthetic motion: dict with ``positions`` (N,17,3) mm Z-up (ground at z = 0),
    ``subject`` (N,) str, ``action`` (N,) str, ``sequence`` (N,) str, ``frame`` (N,) int, ``subjects``
    (list of body dicts), ``fps``. Rows are grouped by clip. Deterministic for ``seed``."""
    if n_subjects < 1 or clips_per_subject < 1 or clip_len < 1:
        raise DataError("synthetic.generate: n_subjects, clips_per_subject and clip_len must be >= 1")
    unknown = [f for f in families if f not in _FAMILY_FN]
    if unknown:
        raise DataError(f"synthetic.generate: unknown motion families {unknown}; known: {FAMILIES}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 1709]))
    bodies = make_subjects(n_subjects, rng)
    # Each subject gets every family in turn (shuffled), so all subjects share the same action mix.
    clip_subject = np.repeat(np.arange(n_subjects), clips_per_subject)
    clip_family = np.concatenate([rng.permutation(np.arange(clips_per_subject) % len(families))
                                  for _ in range(n_subjects)])
    t = np.arange(clip_len) / FPS
    n_clips = len(clip_subject)
    heights = np.array([b["height_mm"] for b in bodies])[clip_subject]
    params = _base_angles(rng, n_clips, t)
    yaw = np.zeros((n_clips, clip_len))
    root_xy = np.zeros((n_clips, clip_len, 2))
    walking = np.zeros(n_clips, dtype=bool)
    for fi, fam in enumerate(families):
        sel = np.flatnonzero(clip_family == fi)
        if not len(sel):
            continue
        sub = {k: v[sel].copy() for k, v in params.items()}
        y, rxy = _FAMILY_FN[fam](rng, sub, t, heights[sel])
        for k in ANGLES:
            params[k][sel] = sub[k]
        yaw[sel] = y
        if rxy is not None:
            root_xy[sel] = rxy
            walking[sel] = True
    yaw += rng.uniform(0, 2 * np.pi, size=(n_clips, 1))  # random global heading per clip
    n = n_clips * clip_len
    lengths = {}
    names = set(SEGMENTS) | {f"{s}_{side}" for s in ("thigh", "shank", "upper_arm", "forearm") for side in "RL"}
    for name in names:
        per_subject = np.array([b[name] for b in bodies])
        lengths[name] = np.repeat(per_subject[clip_subject], clip_len)
    pos = forward_kinematics({k: v.reshape(n) for k, v in params.items()}, yaw.reshape(n), lengths)
    pos = pos.reshape(n_clips, clip_len, NUM_JOINTS, 3)
    ankles = pos[:, :, [3, 6]]
    # Feet planted (non-walking clips): keep the mean ankle position fixed over the clip.
    anchor = ankles[..., :2].mean(2)  # (c, T, 2)
    shift_xy = np.where(walking[:, None, None], root_xy, -(anchor - anchor[:, :1]))
    pos[..., :2] += shift_xy[:, :, None, :]
    ankle_h = np.array([b["ankle_height"] for b in bodies])[clip_subject][:, None]
    pos[..., 2] += (ankle_h - ankles[..., 2].min(-1))[:, :, None]
    subj_ids = np.array([b["id"] for b in bodies])
    fam_names = np.array(families)
    return {
        "positions": pos.reshape(n, NUM_JOINTS, 3).astype(np.float32),
        "subject": np.repeat(subj_ids[clip_subject], clip_len),
        "action": np.repeat(fam_names[clip_family], clip_len),
        "sequence": np.repeat(np.array([f"{subj_ids[s]}/{i:03d}" for i, s in enumerate(clip_subject)]), clip_len),
        "frame": np.tile(np.arange(clip_len), n_clips),
        "subjects": bodies, "fps": FPS,
    }


def default_test_subjects(n_subjects: int) -> tuple:
    """The last two synthetic subjects (one woman, one man when n_subjects is even) are the test split."""
    if n_subjects < 2:
        raise DataError("synthetic: need at least 2 subjects (train and test are split by subject)")
    k = 2 if n_subjects >= 4 else 1
    return tuple(f"syn{i + 1:02d}" for i in range(n_subjects - k, n_subjects))


def synthetic_raw_splits(seed: int = 0, n_subjects: int = 10, clips_per_subject: int = 25, clip_len: int = 100,
                         views: int = 1, families=FAMILIES) -> dict:
    """Generate, view through a seeded virtual rig and split by subject: {'train': RawSplit, 'test': RawSplit}."""
    from .cameras import make_virtual_rig, view_through_rig
    from .poseset import RawSplit

    data = generate(n_subjects, clips_per_subject, clip_len, seed, families)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 2203]))
    rig = make_virtual_rig(rng)
    cam3d, px, focal, rows, cam_idx = view_through_rig(data["positions"], data["sequence"], rig, rng, views=views)
    test_subjects = default_test_subjects(n_subjects)
    is_test = np.isin(data["subject"][rows], test_subjects)
    meta = {"source": "synthetic", "origin": "synthetic generator", "fps": FPS, "seed": seed,
            "cameras": [c.to_dict() for c in rig], "test_subjects": list(test_subjects),
            "bodies": data["subjects"], "split_rule": "by subject (last two subjects are test)"}
    out = {}
    for split, mask in (("train", ~is_test), ("test", is_test)):
        idx = np.flatnonzero(mask)
        r = rows[idx]
        out[split] = RawSplit(px[idx], focal[idx], cam3d[idx], data["subject"][r], data["action"][r],
                              {"sequence": data["sequence"][r], "frame": data["frame"][r], "camera": cam_idx[idx]},
                              dict(meta))
    return out

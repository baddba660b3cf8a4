"""The synthetic generator's body model: subjects (height and segment lengths), anatomical joint limits, and
forward kinematics of a 24-angle skeleton (plus heading) to the 17 H36M joints, vectorised over frames."""
from __future__ import annotations

import numpy as np

from ..skeleton import NUM_JOINTS

# (min, max) in degrees; hips/shoulders: flex(ion) forward +, abd(uction) outward +, rot = internal +.
JOINT_LIMITS = {
    "pelvis_pitch": (-10, 60), "pelvis_roll": (-10, 10),
    "lumbar_flex": (-20, 50), "lumbar_lat": (-25, 25), "lumbar_twist": (-35, 35),
    "neck_flex": (-40, 50), "neck_lat": (-30, 30), "neck_yaw": (-70, 70),
    "hip_flex_R": (-25, 120), "hip_flex_L": (-25, 120), "hip_abd_R": (-15, 40), "hip_abd_L": (-15, 40),
    "hip_rot_R": (-30, 35), "hip_rot_L": (-30, 35), "knee_R": (0, 135), "knee_L": (0, 135),
    "sh_flex_R": (-45, 175), "sh_flex_L": (-45, 175), "sh_abd_R": (-5, 170), "sh_abd_L": (-5, 170),
    "sh_rot_R": (-45, 70), "sh_rot_L": (-45, 70), "elbow_R": (0, 145), "elbow_L": (0, 145),
}
ANGLES = tuple(JOINT_LIMITS)

# Segment lengths as fractions of body height H (see module docstring).
SEGMENTS = {
    "hip_half_width": (0.058, 0.052),  # (women, men): hip-joint centre from the pelvis midline
    "shoulder_half_width": (0.068, 0.074),  # shoulder-joint centre from the thorax (H36M-like)
    "pelvis_drop": (0.012, 0.012),  # hip joints below the root (H36M 'Hip')
    "thigh": (0.250, 0.250), "shank": (0.250, 0.250), "upper_arm": (0.160, 0.160), "forearm": (0.140, 0.140),
    "lower_spine": (0.130, 0.130), "upper_spine": (0.140, 0.140), "neck": (0.072, 0.072), "head": (0.078, 0.078),
    "ankle_height": (0.045, 0.045),
}
# Per-subject spread (sd of the log factor) of each segment; widths and head vary most.
SEGMENT_SD = {"hip_half_width": 0.15, "shoulder_half_width": 0.12, "neck": 0.08, "head": 0.08}
HEIGHT_MM = {"F": (1625.0, 65.0), "M": (1760.0, 70.0)}


# ------------------------------------------------------------------------------------------ subjects
def make_subjects(n_subjects: int, rng: np.random.Generator) -> list:
    """Per-subject body dicts: id, sex (alternating F/M), height_mm and segment lengths (mm)."""
    subjects = []
    for i in range(n_subjects):
        sex = "F" if i % 2 == 0 else "M"
        mu, sd = HEIGHT_MM[sex]
        height = float(np.clip(rng.normal(mu, sd), mu - 2.5 * sd, mu + 2.5 * sd))
        body = {"id": f"syn{i + 1:02d}", "sex": sex, "height_mm": height}
        for name, (f_frac, m_frac) in SEGMENTS.items():
            frac = f_frac if sex == "F" else m_frac
            sd_seg = SEGMENT_SD.get(name, 0.04)
            factor = float(np.exp(np.clip(rng.normal(0, sd_seg), -2.5 * sd_seg, 2.5 * sd_seg)))
            body[name] = frac * height * factor
        for name in ("thigh", "shank", "upper_arm", "forearm"):  # small left/right asymmetry
            asym = float(np.clip(rng.normal(0, 0.01), -0.025, 0.025))
            body[name + "_R"], body[name + "_L"] = body[name] * (1 + asym), body[name] * (1 - asym)
        subjects.append(body)
    return subjects


# ------------------------------------------------------------------------------------------ rotations
def _rx(a):
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([o, z, z, z, c, -s, z, s, c], -1).reshape(a.shape + (3, 3))


def _ry(a):
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([c, z, s, z, o, z, -s, z, c], -1).reshape(a.shape + (3, 3))


def _rz(a):
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([c, -s, z, s, c, z, z, z, o], -1).reshape(a.shape + (3, 3))


def _apply(r, v):
    """R (N,3,3) @ v (N,3) or (3,)."""
    return np.einsum("nij,nj->ni", r, np.broadcast_to(v, r.shape[:-1]))


def _unit(*v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def forward_kinematics(angles: dict, yaw: np.ndarray, lengths: dict) -> np.ndarray:
    """Joint positions (N,17,3) relative to the root, body frame rotated by ``yaw`` about world Z.

    ``angles``: name -> (N,) degrees (see JOINT_LIMITS; clipped here); ``yaw`` (N,) radians;
    ``lengths``: name -> (N,) mm. Body axes at yaw 0: x = subject's right, y = forward, z = up."""
    a = {k: np.deg2rad(np.clip(angles[k], *JOINT_LIMITS[k])) for k in ANGLES}
    n = len(yaw)
    out = np.zeros((n, NUM_JOINTS, 3))
    r_pelvis = _rz(yaw) @ _rx(-a["pelvis_pitch"]) @ _ry(a["pelvis_roll"])
    L = lengths
    for side, sgn, hip_j, knee_j, foot_j in (("R", 1.0, 1, 2, 3), ("L", -1.0, 4, 5, 6)):
        hip = _apply(r_pelvis, np.zeros(3)) + np.einsum(
            "nij,nj->ni", r_pelvis, np.stack([sgn * L["hip_half_width"], np.zeros(n), -L["pelvis_drop"]], -1))
        r_thigh = r_pelvis @ _rx(a[f"hip_flex_{side}"]) @ _ry(-sgn * a[f"hip_abd_{side}"]) @ _rz(sgn * a[f"hip_rot_{side}"])
        knee = hip + _apply(r_thigh, np.array([0, 0, -1.0])) * L[f"thigh_{side}"][:, None]
        r_shank = r_thigh @ _rx(-a[f"knee_{side}"])
        ankle = knee + _apply(r_shank, np.array([0, 0, -1.0])) * L[f"shank_{side}"][:, None]
        out[:, hip_j], out[:, knee_j], out[:, foot_j] = hip, knee, ankle
    f, lat, tw = a["lumbar_flex"], a["lumbar_lat"], a["lumbar_twist"]
    r_low = r_pelvis @ _rx(-0.4 * f) @ _ry(0.4 * lat) @ _rz(0.4 * tw)
    r_chest = r_low @ _rx(-0.6 * f) @ _ry(0.6 * lat) @ _rz(0.6 * tw)
    spine = _apply(r_low, _unit(0, -0.08, 1)) * L["lower_spine"][:, None]
    thorax = spine + _apply(r_chest, _unit(0, 0.06, 1)) * L["upper_spine"][:, None]
    r_head = r_chest @ _rx(-a["neck_flex"]) @ _ry(a["neck_lat"]) @ _rz(a["neck_yaw"])
    nose = thorax + _apply(r_head, _unit(0, 0.45, 0.9)) * L["neck"][:, None]
    head = nose + _apply(r_head, _unit(0, -0.35, 1)) * L["head"][:, None]
    out[:, 7], out[:, 8], out[:, 9], out[:, 10] = spine, thorax, nose, head
    for side, sgn, sh_j, el_j, wr_j in (("R", 1.0, 14, 15, 16), ("L", -1.0, 11, 12, 13)):
        w = L["shoulder_half_width"]
        shoulder = thorax + np.einsum("nij,nj->ni", r_chest, np.stack([sgn * w, -0.05 * w, -0.22 * w], -1))
        r_ua = r_chest @ _ry(-sgn * a[f"sh_abd_{side}"]) @ _rx(a[f"sh_flex_{side}"]) @ _rz(sgn * a[f"sh_rot_{side}"])
        elbow = shoulder + _apply(r_ua, np.array([0, 0, -1.0])) * L[f"upper_arm_{side}"][:, None]
        r_fa = r_ua @ _rx(a[f"elbow_{side}"])
        wrist = elbow + _apply(r_fa, np.array([0, 0, -1.0])) * L[f"forearm_{side}"][:, None]
        out[:, sh_j], out[:, el_j], out[:, wr_j] = shoulder, elbow, wrist
    return out

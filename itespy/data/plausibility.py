"""Is a pose set humanly plausible? Bone-length ratios and joint angles of (N, 17, 3) poses against the
ranges of adult anatomy (:data:`RATIO_BOUNDS`, :data:`ANGLE_BOUNDS`); used to check the synthetic
generator and any DATA source."""
from __future__ import annotations

import numpy as np

from ..skeleton import NUM_JOINTS
from .errors import DataError


def _angle(u, v):
    cos = (u * v).sum(-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1) + 1e-12)
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


RATIO_NAMES = ("thigh/shank", "upper_arm/forearm", "arm/leg", "torso/leg", "head/torso",
               "hip_width/leg", "shoulder_width/leg")
ANGLE_NAMES = ("knee_flexion", "elbow_flexion", "hip_flexion", "shoulder_elevation", "spine_bend", "neck_bend")


def plausibility_stats(poses: np.ndarray) -> dict:
    """Scale- and frame-free body statistics of 3D poses (N,17,3) (any unit, any frame).

    Returns ``{'ratios': {name: (N,)}, 'angles': {name: (2N,) or (N,) degrees}}``:
    ratios thigh/shank, upper_arm/forearm, arm/leg, torso/leg (pelvis->thorax over hip->ankle),
    head/torso (thorax->nose->head top over torso), hip_width/leg, shoulder_width/leg (both sides pooled
    where there are two); angles: knee and elbow flexion (0 = straight), hip flexion (thigh vs the
    trunk's downward direction), shoulder elevation (upper arm vs the trunk's downward direction),
    spine bend (pelvis->spine vs spine->thorax), neck bend (spine->thorax vs thorax->head top)."""
    p = np.asarray(poses, dtype=np.float64)
    if p.ndim != 3 or p.shape[1:] != (NUM_JOINTS, 3):
        raise DataError(f"plausibility_stats: expected poses of shape (N, 17, 3), got {p.shape}")
    d = lambda a, b: np.linalg.norm(p[:, a] - p[:, b], axis=-1)  # noqa: E731
    thigh = (d(1, 2) + d(4, 5)) / 2
    shank = (d(2, 3) + d(5, 6)) / 2
    ua = (d(14, 15) + d(11, 12)) / 2
    fa = (d(15, 16) + d(12, 13)) / 2
    leg = thigh + shank
    torso = d(0, 7) + d(7, 8)
    ratios = {
        "thigh/shank": thigh / shank, "upper_arm/forearm": ua / fa, "arm/leg": (ua + fa) / leg,
        "torso/leg": torso / leg, "head/torso": (d(8, 9) + d(9, 10)) / torso,
        "hip_width/leg": d(1, 4) / leg, "shoulder_width/leg": d(11, 14) / leg,
    }
    down = p[:, 0] - p[:, 8]
    both = lambda f: np.concatenate([f("R"), f("L")])  # noqa: E731
    j = {"R": dict(hip=1, knee=2, ankle=3, sh=14, el=15, wr=16), "L": dict(hip=4, knee=5, ankle=6, sh=11, el=12, wr=13)}
    angles = {
        "knee_flexion": both(lambda s: _angle(p[:, j[s]["knee"]] - p[:, j[s]["hip"]], p[:, j[s]["ankle"]] - p[:, j[s]["knee"]])),
        "elbow_flexion": both(lambda s: _angle(p[:, j[s]["el"]] - p[:, j[s]["sh"]], p[:, j[s]["wr"]] - p[:, j[s]["el"]])),
        "hip_flexion": both(lambda s: _angle(p[:, j[s]["knee"]] - p[:, j[s]["hip"]], down)),
        "shoulder_elevation": both(lambda s: _angle(p[:, j[s]["el"]] - p[:, j[s]["sh"]], down)),
        "spine_bend": _angle(p[:, 7] - p[:, 0], p[:, 8] - p[:, 7]),
        "neck_bend": _angle(p[:, 8] - p[:, 7], p[:, 10] - p[:, 8]),
    }
    return {"ratios": ratios, "angles": angles}


def summarise_plausibility(stats: dict, percentiles=(1, 50, 99)) -> dict:
    """{'ratios'|'angles': {name: [p1, p50, p99]}} from :func:`plausibility_stats` output."""
    return {group: {k: np.percentile(v, percentiles).round(4).tolist() for k, v in stats[group].items()}
            for group in ("ratios", "angles")}


# Fixed anthropometric bounds for ratios (used when no real data is at hand): adult ranges from
# segment tables (Drillis-Contini) widened to cover Human3.6M's and Bandai's joint-centre definitions.
RATIO_BOUNDS = {
    "thigh/shank": (0.85, 1.2), "upper_arm/forearm": (1.0, 1.45), "arm/leg": (0.5, 0.75),
    "torso/leg": (0.45, 0.7), "head/torso": (0.5, 0.8), "hip_width/leg": (0.12, 0.35),
    "shoulder_width/leg": (0.2, 0.45),
}
# Ranges of motion (deg) a healthy adult does not exceed in these statistics.
ANGLE_BOUNDS = {"knee_flexion": (0, 150), "elbow_flexion": (0, 150), "hip_flexion": (0, 135),
                "shoulder_elevation": (0, 180), "spine_bend": (0, 60), "neck_bend": (0, 70)}

"""Evaluation protocols (paper Sec. 4.1), each a short named function over numpy arrays.

Predictions and ground truth are (N, 17, 3). Ground truth is in millimetres; an unsupervised prediction
is in model units (known only up to scale), so every protocol except plain ``mpjpe`` first fixes the
scale. Results are in millimetres (PCK in %, AUC in %). Every report names the protocol it used:

============================ ===========================================================================
``mpjpe``                    root-centred mean per-joint position error, no alignment (same units needed)
``n_mpjpe``                  root-centred, prediction scaled by the least-squares optimal scalar
``mpjpe_scaled``             root-centred after the Procrustes-optimal scale (authors' evaluation code)
``mpjpe_scaled_flip``        ``mpjpe_scaled``, best of the prediction and its depth mirror (C3DPO/authors)
``p_mpjpe``                  Procrustes: rotation (no reflection), scale and translation
``p_mpjpe_reflect``          Procrustes allowing reflections
``p_mpjpe_flip``             ``p_mpjpe``, best of the prediction and its depth mirror (authors' code)
``pck150`` / ``auc``         MPI-INF-3DHP: % joints within 150 mm; mean PCK over thresholds 0..150 mm
============================ ===========================================================================
"""
from __future__ import annotations

import numpy as np

from .skeleton import body_handedness, check_joint_count

PCK_THRESHOLD_MM = 150.0
AUC_THRESHOLDS_MM = np.linspace(0.0, 150.0, 31)  # 5 mm steps, MPI-INF-3DHP convention
_EPS = 1e-12
MIRROR_TIE_MM = 1e-6  # scores closer than this count as equal (rounding, not a better mirror)


def _check(pred, gt):
    pred, gt = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    check_joint_count(pred, "prediction", dims=(3,))
    check_joint_count(gt, "ground truth", dims=(3,))
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape}: expected the same shape")
    if pred.size == 0:
        raise ValueError(f"prediction / ground truth {pred.shape}: no poses; expected at least one (N, 17, 3) pose")
    if not (np.isfinite(pred).all() and np.isfinite(gt).all()):
        raise ValueError("prediction / ground truth: expected finite values, found NaN or inf")
    return pred, gt


def _centre(x):
    return x - x[..., :1, :]


def joint_errors(pred, gt) -> np.ndarray:
    """Per-sample, per-joint Euclidean distance after root-centring both: (N, 17)."""
    pred, gt = _check(pred, gt)
    return np.linalg.norm(_centre(pred) - _centre(gt), axis=-1)


def mpjpe(pred, gt) -> np.ndarray:
    """Per-sample MPJPE (N,), root-centred, no scale or rotation alignment."""
    return joint_errors(pred, gt).mean(-1)


def optimal_scale(pred, gt) -> np.ndarray:
    """Least-squares scalar s minimising ‖s·p − g‖ for root-centred p, g (N,) (Rhodin et al. 2018)."""
    p, g = _centre(np.asarray(pred, np.float64)), _centre(np.asarray(gt, np.float64))
    return (p * g).sum((-1, -2)) / np.maximum((p * p).sum((-1, -2)), _EPS)


def n_mpjpe(pred, gt) -> np.ndarray:
    """Per-sample N-MPJPE: MPJPE after scaling the root-centred prediction by :func:`optimal_scale`."""
    pred, gt = _check(pred, gt)
    return mpjpe(optimal_scale(pred, gt)[:, None, None] * _centre(pred), gt)


def procrustes_align(pred, gt, allow_reflection: bool = False):
    """Similarity transform (rotation, scale, translation) taking ``pred`` onto ``gt`` per sample.

    Returns (aligned prediction, scale s (N,), rotation (N,3,3), translation (N,1,3)). Degenerate inputs
    (all joints at one point) give scale 0 and the ground-truth centroid, not NaNs."""
    pred, gt = _check(pred, gt)
    mu_p, mu_g = pred.mean(1, keepdims=True), gt.mean(1, keepdims=True)
    p, g = pred - mu_p, gt - mu_g
    norm_p = np.sqrt((p ** 2).sum((1, 2)))
    norm_g = np.sqrt((g ** 2).sum((1, 2)))
    pn = p / np.maximum(norm_p, _EPS)[:, None, None]
    gn = g / np.maximum(norm_g, _EPS)[:, None, None]
    u, sigma, vt = np.linalg.svd(np.einsum("nji,njk->nik", pn, gn))  # cross-covariance pnᵀ gn
    rot = np.einsum("nij,njk->nik", u, vt)  # applied to rows: p @ rot
    if not allow_reflection:
        det = np.sign(np.linalg.det(rot))
        vt[:, -1] *= det[:, None]
        sigma[:, -1] *= det
        rot = np.einsum("nij,njk->nik", u, vt)
    scale = sigma.sum(-1) * norm_g / np.maximum(norm_p, _EPS)
    aligned = scale[:, None, None] * (p @ rot) + mu_g
    return aligned, scale, rot, mu_g - scale[:, None, None] * (mu_p @ rot)


def mpjpe_scaled(pred, gt) -> np.ndarray:
    """Per-sample MPJPE after the authors' per-sample scale calibration: the Procrustes-optimal scale
    (sum of singular values of the cross-covariance of the centred, norm-normalised poses, times
    ‖centred gt‖/‖centred pred‖) applied to the prediction, then both root-centred."""
    pred, gt = _check(pred, gt)
    _, scale, _, _ = procrustes_align(pred, gt)
    return mpjpe(scale[:, None, None] * pred, gt)


def p_mpjpe(pred, gt, allow_reflection: bool = False) -> np.ndarray:
    """Per-sample P-MPJPE: mean joint error after full Procrustes alignment (no root-centring needed)."""
    aligned, _, _, _ = procrustes_align(pred, gt, allow_reflection=allow_reflection)
    return np.linalg.norm(aligned - np.asarray(gt, np.float64), axis=-1).mean(-1)


def depth_flip(pred) -> np.ndarray:
    """The depth mirror of a prediction: root-relative z negated (same 2D projection under orthography)."""
    out = _centre(np.asarray(pred, np.float64)).copy()
    out[..., 2] = -out[..., 2]
    return out


def flip_best(metric, pred, gt) -> np.ndarray:
    """Per sample, the better of ``metric(pred)`` and ``metric(depth_flip(pred))`` (C3DPO, authors' code)."""
    return np.minimum(metric(pred, gt), metric(depth_flip(pred), gt))


def mirror_chosen(pred, gt, metric=None) -> np.ndarray:
    """Per sample, whether its depth mirror scores strictly better than the prediction itself under ``metric``
    (default :func:`mpjpe_scaled`), i.e. whether :func:`flip_best` uses the mirror. A tie (the flat pose, its
    own mirror) is not a mirror choice."""
    metric = metric or mpjpe_scaled
    return metric(depth_flip(pred), gt) < metric(pred, gt) - MIRROR_TIE_MM


def mirror_rate(pred, gt, metric=None) -> float:
    """The share of samples whose mirror is chosen (:func:`mirror_chosen`): about 0.5 for a model whose depth
    sign is a coin toss; 0 for the flat pose."""
    return float(mirror_chosen(pred, gt, metric).mean())


def wrong_handed_rate(pred) -> float:
    """The share of predictions that are mirror-image bodies (:func:`itespy.skeleton.body_handedness` below 0;
    no real pose is). Needs no ground truth. A model whose depth sign is a coin toss has about 0.5, as its
    mirror rate; the flat pose has no handedness and counts as right (0)."""
    return float((body_handedness(np.asarray(pred, np.float64)) < 0).mean())  # differences only: no centring


def pck(pred, gt, threshold_mm: float = PCK_THRESHOLD_MM, scale_align: bool = True) -> float:
    """Percentage of joints within ``threshold_mm`` (root-centred; after per-sample scale by default)."""
    pred, gt = _check(pred, gt)
    if scale_align:
        pred = procrustes_align(pred, gt)[1][:, None, None] * pred
    return float((joint_errors(pred, gt) <= threshold_mm).mean() * 100.0)


def auc(pred, gt, thresholds_mm=AUC_THRESHOLDS_MM, scale_align: bool = True) -> float:
    """Area under the PCK curve over ``thresholds_mm`` (mean PCK, %)."""
    pred, gt = _check(pred, gt)
    if scale_align:
        pred = procrustes_align(pred, gt)[1][:, None, None] * pred
    err = joint_errors(pred, gt)
    return float(np.mean([(err <= t).mean() for t in thresholds_mm]) * 100.0)


PER_SAMPLE_PROTOCOLS = {
    "mpjpe": mpjpe,
    "n_mpjpe": n_mpjpe,
    "mpjpe_scaled": mpjpe_scaled,
    "mpjpe_scaled_flip": lambda p, g: flip_best(mpjpe_scaled, p, g),
    "p_mpjpe": p_mpjpe,
    "p_mpjpe_reflect": lambda p, g: p_mpjpe(p, g, allow_reflection=True),
    "p_mpjpe_flip": lambda p, g: flip_best(p_mpjpe, p, g),
}
AGGREGATE_PROTOCOLS = {"pck150": pck, "auc": auc}
PROTOCOLS = tuple(PER_SAMPLE_PROTOCOLS) + tuple(AGGREGATE_PROTOCOLS)
# The protocols the paper's tables report (MPJPE column, P-MPJPE column), as the authors' code computes them.
TABLE_PROTOCOLS = {"MPJPE": "mpjpe_scaled_flip", "P-MPJPE": "p_mpjpe_flip", "PCK": "pck150", "AUC": "auc"}


def evaluate_protocol(name: str, pred, gt, actions=None) -> dict:
    """One protocol over a set: {'protocol', 'mean' (per-frame mean), 'per_action' (mean of each action)}."""
    if name in AGGREGATE_PROTOCOLS:
        return {"protocol": name, "mean": AGGREGATE_PROTOCOLS[name](pred, gt), "per_action": {}}
    if name not in PER_SAMPLE_PROTOCOLS:
        raise ValueError(f"protocol: expected one of {PROTOCOLS}, got {name!r}")
    per_sample = PER_SAMPLE_PROTOCOLS[name](pred, gt)
    per_action = {}
    if actions is not None:
        actions = np.asarray(actions)
        per_action = {str(a): float(per_sample[actions == a].mean()) for a in np.unique(actions)}
    return {"protocol": name, "mean": float(per_sample.mean()), "per_action": per_action}

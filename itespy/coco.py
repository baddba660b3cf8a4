"""COCO-17 keypoints and their conversion to the kit's H36M-17 skeleton.

Most 2D detectors (OpenPose's COCO model, Detectron2, MMPose, YOLO-pose, ViTPose) output the 17 COCO
keypoints. The ITES models of this kit read the 17 Human3.6M joints (:mod:`itespy.skeleton`). Twelve
joints exist in both (shoulders, elbows, wrists, hips, knees, ankles), the COCO nose stands in for
H36M's neck/nose joint, and the other four H36M joints are *made up* from COCO keypoints by the rules
below. Every rule is an approximation; docs/your_keypoints.md
has the table and the known biases.

COCO-17 order: 0 nose, 1 left_eye, 2 right_eye, 3 left_ear, 4 right_ear, 5 left_shoulder,
6 right_shoulder, 7 left_elbow, 8 right_elbow, 9 left_wrist, 10 right_wrist, 11 left_hip, 12 right_hip,
13 left_knee, 14 right_knee, 15 left_ankle, 16 right_ankle ("left"/"right": the subject's own side,
as in H36M).

Derived H36M joints (all computed per frame from 2D points, so they work in any view):

* **0 Hip (pelvis)** = midpoint of the two COCO hips.
* **8 Thorax** = midpoint of the two COCO shoulders.
* **7 Spine** = midpoint of pelvis and thorax (H36M's spine joint sits 0.47 of the way up: close).
* **9 Neck/Nose** = the COCO nose (H36M's joint 9 is the nose joint of its mocap skeleton).
* **10 Head (top of the head)** = face centre ``c`` pushed away from the thorax:
  ``head = c + HEAD_EXTRAPOLATION * (c - thorax)``. ``c`` is the mean of the eye and ear *pairs* whose
  two keypoints are both visible (confidence >= the threshold), so that losing one ear does not pull the
  head sideways; with no complete pair, the mean of the visible eyes and ears (a profile view). With H36M
  proportions (thorax-nose ~ nose-head top, eyes/ears ~0.15-0.2 of that above the nose) the factor 0.7
  puts the head top at the right height. When no eye or ear is visible the nose is used as ``c`` with
  the factor 1.0 (head top as far above the nose as the nose is above the thorax).

Known biases (not corrected): COCO hips are annotated on the outside of the hip (wider and lower than
H36M's hip-joint centres), COCO ankles are the ankle bones (H36M 'Foot' is the ankle joint centre), and
the COCO nose is the tip of the nose (in front of H36M's nose joint).

Confidence propagation: a joint copied from COCO keeps its score; a derived joint gets the **minimum**
score of the keypoints it was computed from (for the head: the face keypoints that formed ``c``, or the
nose, and both shoulders).
"""
from __future__ import annotations

import numpy as np

COCO_NUM_KEYPOINTS = 17
COCO_KEYPOINT_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
# Bones of the COCO skeleton (for drawing 2D inputs in COCO order).
COCO_BONES = ((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
              (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6))

# H36M joint <- COCO keypoint, for the joints copied as they are (twelve body joints and the nose).
H36M_FROM_COCO = {
    1: 12,  # RHip <- right_hip
    2: 14,  # RKnee <- right_knee
    3: 16,  # RFoot <- right_ankle
    4: 11,  # LHip <- left_hip
    5: 13,  # LKnee <- left_knee
    6: 15,  # LFoot <- left_ankle
    9: 0,  # Neck/Nose <- nose
    11: 5,  # LShoulder <- left_shoulder
    12: 7,  # LElbow <- left_elbow
    13: 9,  # LWrist <- left_wrist
    14: 6,  # RShoulder <- right_shoulder
    15: 8,  # RElbow <- right_elbow
    16: 10,  # RWrist <- right_wrist
}
FACE_KEYPOINTS = (1, 2, 3, 4)  # eyes and ears: the face centre of the head-top rule
FACE_PAIRS = ((1, 2), (3, 4))  # (left, right) eyes, ears
HEAD_EXTRAPOLATION = 0.7  # head = c + 0.7 (c - thorax), c = mean of the visible eyes/ears
HEAD_EXTRAPOLATION_NOSE_ONLY = 1.0  # the same rule with c = nose when no eye or ear is visible
DEFAULT_MIN_CONFIDENCE = 0.3

# One line per H36M joint: how it is obtained (printed by the notebook and the docs table).
MAPPING_TABLE = (
    ("Hip", "mean(left_hip, right_hip)"),
    ("RHip", "right_hip"),
    ("RKnee", "right_knee"),
    ("RFoot", "right_ankle"),
    ("LHip", "left_hip"),
    ("LKnee", "left_knee"),
    ("LFoot", "left_ankle"),
    ("Spine", "mean(Hip, Thorax)"),
    ("Thorax", "mean(left_shoulder, right_shoulder)"),
    ("Neck/Nose", "nose"),
    ("Head", "c + 0.7 (c - Thorax), c = mean(visible eye/ear pairs); else nose + 1.0 (nose - Thorax)"),
    ("LShoulder", "left_shoulder"),
    ("LElbow", "left_elbow"),
    ("LWrist", "left_wrist"),
    ("RShoulder", "right_shoulder"),
    ("RElbow", "right_elbow"),
    ("RWrist", "right_wrist"),
)


def coco_to_h36m(keypoints, confidence=None, min_confidence: float = DEFAULT_MIN_CONFIDENCE):
    """COCO-17 2D keypoints (..., 17, 2) [+ scores (..., 17)] -> H36M-17 (..., 17, 2) and scores (..., 17).

    ``keypoints`` may also be (..., 17, 3) with the score as the last column. Without scores every
    keypoint counts as visible (score 1). ``min_confidence`` only decides which eyes/ears form the face
    centre of the head-top rule; the returned scores are the propagated ones (minimum of the sources),
    so a caller can apply its own threshold afterwards. Works for any float unit (pixels or normalised).
    Raises ValueError for a shape that is not (..., 17, 2|3)."""
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim < 2 or kp.shape[-2] != COCO_NUM_KEYPOINTS or kp.shape[-1] not in (2, 3):
        raise ValueError(f"coco_to_h36m: expected COCO-17 keypoints of shape (..., 17, 2) or (..., 17, 3), "
                         f"got {kp.shape}")
    if kp.shape[-1] == 3:
        if confidence is not None:
            raise ValueError("coco_to_h36m: scores given twice (a third column and `confidence`)")
        kp, conf = kp[..., :2], kp[..., 2]
    elif confidence is None:
        conf = np.ones(kp.shape[:-1])
    else:
        conf = np.asarray(confidence, dtype=np.float64)
        if conf.shape != kp.shape[:-1]:
            raise ValueError(f"coco_to_h36m: confidence must have shape {kp.shape[:-1]}, got {conf.shape}")
    out = np.zeros(kp.shape)
    out_conf = np.zeros(conf.shape)
    for h, c in H36M_FROM_COCO.items():
        out[..., h, :] = kp[..., c, :]
        out_conf[..., h] = conf[..., c]
    pelvis = 0.5 * (kp[..., 11, :] + kp[..., 12, :])
    thorax = 0.5 * (kp[..., 5, :] + kp[..., 6, :])
    pelvis_conf = np.minimum(conf[..., 11], conf[..., 12])
    thorax_conf = np.minimum(conf[..., 5], conf[..., 6])
    out[..., 0, :], out_conf[..., 0] = pelvis, pelvis_conf
    out[..., 8, :], out_conf[..., 8] = thorax, thorax_conf
    out[..., 7, :], out_conf[..., 7] = 0.5 * (pelvis + thorax), np.minimum(pelvis_conf, thorax_conf)
    out[..., 10, :], out_conf[..., 10] = _head_top(kp, conf, thorax, thorax_conf, min_confidence)
    return out, out_conf


def _head_top(kp, conf, thorax, thorax_conf, min_confidence):
    face = np.array(FACE_KEYPOINTS)
    visible = (conf[..., face] >= min_confidence) & np.isfinite(kp[..., face, :]).all(-1)  # (..., 4)
    pair_ok = np.stack([visible[..., 0] & visible[..., 1], visible[..., 2] & visible[..., 3]], -1)  # (..., 2)
    in_pair = np.repeat(pair_ok, 2, axis=-1)  # (..., 4): keypoint belongs to a complete pair
    use = np.where(pair_ok.any(-1, keepdims=True), in_pair, visible)  # complete pairs first, else singles
    count = use.sum(-1)
    pts = np.where(use[..., None], kp[..., face, :], 0.0)
    centre_face = pts.sum(-2) / np.maximum(count, 1)[..., None]
    face_conf = np.where(use, conf[..., face], np.inf).min(-1)  # min over the face keypoints used
    use_face = count > 0
    centre = np.where(use_face[..., None], centre_face, kp[..., 0, :])
    factor = np.where(use_face, HEAD_EXTRAPOLATION, HEAD_EXTRAPOLATION_NOSE_ONLY)[..., None]
    head = centre + factor * (centre - thorax)
    head_conf = np.minimum(np.where(use_face, face_conf, conf[..., 0]), thorax_conf)
    return head, head_conf

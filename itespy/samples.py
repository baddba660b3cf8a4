"""Sample keypoint files for ``itespy predict``, generated on demand (nothing binary is shipped).

Both samples come from one clip of the kit's own synthetic **test** subjects (never seen in training),
so the true 3D is known and the predictions can be checked:

* ``sample_h36m17.npz`` -- ``keypoints`` (N, 17, 2): the clip's exact pixels in the H36M-17 order, seen
  by the virtual H36M-like camera (f = 1145 px, 1000x1000 image) of :mod:`itespy.data.cameras`.
* ``sample_coco17.json`` -- the same clip as a detector would report it, in the COCO results format
  (one entry per person and image: ``image_id``, ``category_id``, ``keypoints`` = 17 (x, y, score)
  triples, ``score``). The COCO face keypoints (eyes, ears) that H36M does not have come from a simple
  head model (:func:`coco_points_3d`); pixel noise (``noise_px``, Gaussian), per-keypoint scores, a few
  low-confidence misdetections and a lower-scoring second person on some frames are added, all from a
  seeded generator.
* ``sample_truth.npz`` -- ``poses_3d_mm`` (N, 17, 3, camera frame, root-centred), ``pixels_h36m17``,
  ``frame_id``, ``focal_px``, ``principal_px``, ``image_size``, ``sequence``, ``action``.

:func:`write_samples` writes the three files (atomically) into a cache folder and returns their paths.
Deterministic for ``(seed, clip, noise_px)``.
"""
from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np

from .coco import COCO_KEYPOINT_NAMES, COCO_NUM_KEYPOINTS, H36M_FROM_COCO
from .io import atomic_write_bytes, atomic_write_json

DEFAULT_CLIP = 9  # 'syn09/209', a walk seen by virtual camera 0 (seed 0)
DEFAULT_NOISE_PX = 3.0
# The head model (units: the nose-to-head-top length of the pose; axes: up = nose -> head top, forward =
# the way the chest faces, left = the subject's left): (up, forward, left) offsets from the nose.
FACE_OFFSETS = {
    "left_eye": (0.25, -0.10, 0.25), "right_eye": (0.25, -0.10, -0.25),
    "left_ear": (0.10, -0.55, 0.55), "right_ear": (0.10, -0.55, -0.55),
}
_SAMPLE_SALT = 909


def default_cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / "itespy-samples"


@functools.lru_cache(maxsize=2)
def _synthetic_test_split(seed: int):
    """The synthetic test PoseSet (cached: generating it takes about a second; callers only read it)."""
    from .data import load_splits
    return load_splits("synthetic", seed=seed, max_train=1)["test"]


def synthetic_clip(seed: int = 0, clip: int = DEFAULT_CLIP) -> dict:
    """One clip of the synthetic test split (``clip``: its position among the test clips, in order).

    Returns pixels (N, 17, 2, H36M order), poses_3d_mm (N, 17, 3, root-centred camera frame), cam3d_mm
    (absolute camera frame), focal_px (2,), principal_px (2,), image_size (W, H), sequence, action,
    frame (N,) and the dataset's 2D normalisation ``scale``."""
    test = _synthetic_test_split(int(seed))
    per = test.meta["per_frame"]
    names, first = np.unique(per["sequence"], return_index=True)
    ordered = names[np.argsort(first)]
    if not 0 <= clip < len(ordered):
        raise ValueError(f"synthetic_clip: clip must be in 0..{len(ordered) - 1}, got {clip}")
    rows = np.flatnonzero(per["sequence"] == ordered[clip])
    rows = rows[np.argsort(per["frame"][rows], kind="stable")]
    scale = test.meta["scale"]
    focal = per["focal_px"][rows].astype(np.float64)
    pixels = test.keypoints_2d[rows].astype(np.float64) / scale * focal[:, None] + per["root_px"][rows][:, None]
    camera = test.meta["cameras"][int(per["camera"][rows[0]])]
    poses = test.poses_3d[rows].astype(np.float64)
    return {"pixels": pixels, "poses_3d_mm": poses, "cam3d_mm": poses + per["root_cam_mm"][rows][:, None],
            "focal_px": np.asarray(camera["focal_px"], dtype=np.float64),
            "principal_px": np.asarray(camera["center_px"], dtype=np.float64),
            "image_size": tuple(int(v) for v in camera["res"]), "sequence": str(ordered[clip]),
            "action": str(test.actions[rows[0]]), "frame": per["frame"][rows].astype(np.int64),
            "scale": float(scale)}


def coco_points_3d(poses) -> np.ndarray:
    """H36M-17 3D poses (N, 17, 3) -> the 17 COCO keypoints in 3D (N, 17, 3), same frame and unit.

    Body keypoints are the matching H36M joints, the nose is H36M's nose joint (9); eyes and ears are
    placed by :data:`FACE_OFFSETS` in a head frame (up = nose -> head top, left = from the right to the
    left shoulder made orthogonal to up, forward = left x up). A model, not anatomy: it only has to give a
    detector-like layout for the round trip tests."""
    p = np.asarray(poses, dtype=np.float64)
    out = np.zeros(p.shape[:-2] + (COCO_NUM_KEYPOINTS, 3))
    for h, c in H36M_FROM_COCO.items():
        out[..., c, :] = p[..., h, :]
    nose, top = p[..., 9, :], p[..., 10, :]
    up = top - nose
    length = np.linalg.norm(up, axis=-1, keepdims=True)
    up = up / np.maximum(length, 1e-9)
    side = p[..., 11, :] - p[..., 14, :]
    side = side - (side * up).sum(-1, keepdims=True) * up
    left = side / np.maximum(np.linalg.norm(side, axis=-1, keepdims=True), 1e-9)
    forward = np.cross(left, up)
    for name, (a, b, c) in FACE_OFFSETS.items():
        out[..., COCO_KEYPOINT_NAMES.index(name), :] = nose + length * (a * up + b * forward + c * left)
    return out


def _project(points_cam, focal, principal):
    return points_cam[..., :2] / points_cam[..., 2:3] * focal + principal


def make_coco_sample(seed: int = 0, clip: int = DEFAULT_CLIP, noise_px: float = DEFAULT_NOISE_PX) -> dict:
    """The COCO-layout sample: ``results`` (the JSON list), ``clean_pixels`` (N, 17, 2, COCO order, no
    noise), ``scores`` (N, 17) and the clip dict of :func:`synthetic_clip` (``clip``)."""
    data = synthetic_clip(seed, clip)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(clip), _SAMPLE_SALT]))
    clean = _project(coco_points_3d(data["cam3d_mm"]), data["focal_px"], data["principal_px"])
    n = len(clean)
    noisy = clean + rng.normal(0.0, noise_px, size=clean.shape)
    scores = rng.uniform(0.6, 1.0, size=(n, COCO_NUM_KEYPOINTS))
    # misdetections: a wrist or ankle jumps by ~40 px with a low score (these must be filled, not used)
    wrong = rng.choice(n, size=max(1, n // 12), replace=False)
    joints = rng.choice([9, 10, 15, 16], size=len(wrong))
    noisy[wrong, joints] += rng.normal(0.0, 40.0, size=(len(wrong), 2))
    scores[wrong, joints] = rng.uniform(0.02, 0.2, size=len(wrong))
    # the first frame has a left wrist nobody is sure of: it cannot be filled from an earlier frame
    scores[0, COCO_KEYPOINT_NAMES.index("left_wrist")] = 0.05
    results = []
    for i in range(n):
        kp = np.concatenate([noisy[i], scores[i][:, None]], -1)
        results.append({"image_id": int(data["frame"][i]), "category_id": 1,
                        "keypoints": [round(float(v), 2) for v in kp.reshape(-1)],
                        "score": round(float(scores[i].mean()), 4)})
        if i % 7 == 3:  # a second, less certain person further right (must be ignored)
            other = noisy[i] + np.array([260.0, 15.0])
            kp = np.concatenate([other, 0.5 * scores[i][:, None]], -1)
            results.append({"image_id": int(data["frame"][i]), "category_id": 1,
                            "keypoints": [round(float(v), 2) for v in kp.reshape(-1)],
                            "score": round(float(0.5 * scores[i].mean()), 4)})
    return {"results": results, "clean_pixels": clean, "scores": scores, "clip": data}


def write_samples(directory=None, seed: int = 0, clip: int = DEFAULT_CLIP,
                  noise_px: float = DEFAULT_NOISE_PX) -> dict:
    """Write sample_h36m17.npz, sample_coco17.json and sample_truth.npz into ``directory`` (default: a
    folder under the system temp dir); returns {'h36m17': path, 'coco17': path, 'truth': path}."""
    import io
    folder = Path(directory) if directory is not None else default_cache_dir() / f"seed{seed}-clip{clip}"
    coco = make_coco_sample(seed, clip, noise_px)
    data = coco["clip"]

    def npz_bytes(**arrays) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    paths = {"h36m17": folder / "sample_h36m17.npz", "coco17": folder / "sample_coco17.json",
             "truth": folder / "sample_truth.npz"}
    atomic_write_bytes(paths["h36m17"], npz_bytes(keypoints=data["pixels"].astype(np.float32)))
    atomic_write_json(paths["coco17"], coco["results"])
    atomic_write_bytes(paths["truth"], npz_bytes(
        poses_3d_mm=data["poses_3d_mm"].astype(np.float32), pixels_h36m17=data["pixels"].astype(np.float32),
        frame_id=data["frame"], focal_px=data["focal_px"], principal_px=data["principal_px"],
        image_size=np.asarray(data["image_size"]), sequence=np.array(data["sequence"]),
        action=np.array(data["action"]), scale=np.array(data["scale"])))
    return paths


def load_truth(path) -> dict:
    """The arrays of a sample_truth.npz as a dict (strings as str)."""
    with np.load(path) as z:
        out = {k: z[k] for k in z.files}
    for key in ("sequence", "action"):
        out[key] = str(out[key])
    out["image_size"] = tuple(int(v) for v in out["image_size"])
    out["scale"] = float(out["scale"])
    return out


__all__ = ["DEFAULT_CLIP", "DEFAULT_NOISE_PX", "FACE_OFFSETS", "coco_points_3d", "default_cache_dir",
           "load_truth", "make_coco_sample", "synthetic_clip", "write_samples"]

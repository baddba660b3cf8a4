"""Reading and cleaning keypoint input for :mod:`itespy.predict` (pipeline steps 1-4).

Readers for ``.npz`` / ``.json`` (COCO results, COCO annotations, nested lists) -> :class:`RawKeypoints`;
:func:`check_values` (NaN/inf rules), :func:`to_h36m` (joint order), :func:`fill_missing` (the missing-joint
rule) and :func:`normalise_pixels` (pixels -> model-space 2D). Errors in the input raise :class:`InputError`.
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import coco, geometry
from ..skeleton import HEAD, JOINT_NAMES, NUM_JOINTS, ROOT

FORMATS = ("h36m17", "coco17")
NORMALISE_MODES = ("auto", "sequence", "checkpoint")
DEFAULT_MIN_CONFIDENCE = coco.DEFAULT_MIN_CONFIDENCE  # 0.3
DEFAULT_MAX_GAP = 10  # frames: how far back a missing joint may be taken from
DEFAULT_MAX_MISSING = 8  # a frame with more missing joints than this is skipped
# joint counts of other common layouts, for error messages
_KNOWN_LAYOUTS = {18: "OpenPose COCO-18 (it has an extra neck joint)", 25: "OpenPose BODY_25",
                  16: "MPII-16", 32: "the full 32-joint Human3.6M skeleton", 133: "COCO-WholeBody",
                  33: "MediaPipe BlazePose", 26: "Halpe-26", 14: "LSP-14"}


class InputError(ValueError):
    """Unusable keypoint input; the message names the file and what was expected."""


class InputNotFoundError(InputError, FileNotFoundError):
    """The input file does not exist."""


# ---------------------------------------------------------------------------------------------- reading
@dataclass
class RawKeypoints:
    """Keypoints as read from a file, in the file's own joint order.

    keypoints (N, 17, 2) float64 pixels; confidence (N, 17) float64 (1 where the file had none);
    frame_id (N,) ints or strings (COCO ``image_id``; else 0..N-1); notes: what the reader decided."""
    keypoints: np.ndarray
    confidence: np.ndarray
    frame_id: np.ndarray
    source: str
    has_confidence: bool
    notes: list = field(default_factory=list)


def read_keypoints(path) -> RawKeypoints:
    """Read a keypoint file (see the :mod:`itespy.predict` docstring for the formats). Raises :class:`InputError`."""
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(f"input {path}: file not found; expected an .npz or .json keypoint file.")
    if not path.is_file():
        raise InputError(f"input {path}: expected a file, got a folder.")
    if path.stat().st_size == 0:
        raise InputError(f"input {path}: the file is empty; expected an .npz with 'keypoints' (N, 17, 2|3) "
                         "or a .json keypoint list.")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _read_npz(path)
    if suffix == ".json":
        return _read_json(path)
    raise InputError(f"input {path}: unknown file type {path.suffix!r}; expected .npz (array 'keypoints') or "
                     ".json (COCO results list or a nested list).")


def _read_npz(path: Path) -> RawKeypoints:
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic not in (b"PK\x03\x04", b"PK\x05\x06"):  # an .npz is a zip archive
        kind = "a text file" if _looks_like_text(path) else "not a zip archive"
        raise InputError(f"input {path}: not a NumPy .npz archive ({kind}); expected "
                         "np.savez(path, keypoints=array of shape (N, 17, 2) or (N, 17, 3)).")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"input {path}: not a readable NumPy .npz archive ({type(exc).__name__}: {exc}); "
                         "expected np.savez(path, keypoints=array of shape (N, 17, 2) or (N, 17, 3)).") from None
    if "keypoints" not in arrays:
        raise InputError(f"input {path}: no array 'keypoints' (found {sorted(arrays) or 'no arrays'}); expected "
                         "'keypoints' of shape (N, 17, 2) or (N, 17, 3).")
    kp, conf, has_conf = as_frames(arrays["keypoints"], path)
    frame_id = np.arange(len(kp))
    if "frame_id" in arrays:
        frame_id = np.asarray(arrays["frame_id"]).reshape(-1)
        if len(frame_id) != len(kp):
            raise InputError(f"input {path}: 'frame_id' has {len(frame_id)} entries, 'keypoints' {len(kp)} frames.")
    return RawKeypoints(kp, conf, frame_id, str(path), has_conf)


def _looks_like_text(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(512)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in head


def _read_json(path: Path) -> RawKeypoints:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"input {path}: not a text file; expected JSON.") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"input {path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}).") from None
    if isinstance(data, dict):
        if "annotations" in data:
            return _read_coco_entries(data["annotations"], path, "COCO annotation file")
        if "keypoints" in data:
            data = data["keypoints"]
        else:
            raise InputError(f"input {path}: a JSON object without 'annotations' or 'keypoints' (keys: "
                             f"{sorted(data)[:8]}); expected a COCO results list or a nested keypoint list.")
    if not isinstance(data, list) or not data:
        raise InputError(f"input {path}: {'an empty list' if data == [] else 'unexpected JSON'}; expected a "
                         "non-empty COCO results list or a nested list of shape (N, 17, 2|3).")
    if all(isinstance(e, dict) for e in data):
        return _read_coco_entries(data, path, "COCO results list")
    kp, conf, has_conf = as_frames(data, path)
    return RawKeypoints(kp, conf, np.arange(len(kp)), str(path), has_conf)


def _read_coco_entries(entries, path: Path, kind: str) -> RawKeypoints:
    """COCO-style entries -> one person per image_id: the one with the highest score (``score``, else the
    mean keypoint score); images ordered by image_id when all ids are numbers, else by first appearance."""
    if not isinstance(entries, list) or not entries:
        raise InputError(f"input {path}: the {kind} is empty; expected entries with 'image_id' and 'keypoints'.")
    best: dict = {}
    order = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "keypoints" not in entry or "image_id" not in entry:
            raise InputError(f"input {path}: entry {i} of the {kind} lacks 'image_id' or 'keypoints'; expected "
                             "{'image_id': ..., 'keypoints': [x1, y1, s1, ..., x17, y17, s17], 'score': ...}.")
        flat = entry["keypoints"]
        try:
            values = np.asarray(flat, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise InputError(f"input {path}: entry {i}: 'keypoints' is not a list of numbers.") from None
        if values.size != 3 * NUM_JOINTS:
            joints = values.size // 3 if values.size % 3 == 0 else None
            hint = f" ({joints} keypoints: {_KNOWN_LAYOUTS[joints]}?)" if joints in _KNOWN_LAYOUTS else ""
            raise InputError(f"input {path}: entry {i}: 'keypoints' has {values.size} numbers{hint}; expected "
                             f"{3 * NUM_JOINTS} = 17 keypoints x (x, y, score).")
        triples = values.reshape(NUM_JOINTS, 3)
        score = entry.get("score")
        score = float(np.nanmean(triples[:, 2])) if score is None else float(score)
        image = entry["image_id"]
        if not isinstance(image, (int, str)) or isinstance(image, bool):
            raise InputError(f"input {path}: entry {i}: 'image_id' must be an integer or a string, got {image!r}.")
        if image not in best:
            order.append(image)
            best[image] = (score, triples, 1)
        else:
            old = best[image]
            best[image] = ((score, triples) if score > old[0] else old[:2]) + (old[2] + 1,)
    if all(isinstance(k, int) for k in order):
        order = sorted(order)
    kp = np.stack([best[k][1] for k in order])
    extra = sum(best[k][2] - 1 for k in order)
    notes = [f"{kind}: {len(entries)} person entries for {len(order)} images; kept the highest-scoring person "
             f"per image ({extra} other detections ignored)"]
    frames = np.array(order, dtype=np.int64 if all(isinstance(k, int) for k in order) else str)
    kp, conf, has_conf = as_frames(kp, path)
    return RawKeypoints(kp, conf, frames, str(path), has_conf, notes)


def as_frames(array, path):
    """(N, 17, 2|3) or (17, 2|3) numbers -> (keypoints (N, 17, 2), confidence (N, 17), has_confidence)."""
    try:
        a = np.asarray(array, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"input {path}: the keypoints are not a rectangular array of numbers; expected shape "
                         "(N, 17, 2) or (N, 17, 3).") from None
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[-1] not in (2, 3) or a.shape[1] != NUM_JOINTS:
        hint = ""
        if a.ndim == 3 and a.shape[1] != NUM_JOINTS:
            hint = f" ({a.shape[1]} joints" + (f": {_KNOWN_LAYOUTS[a.shape[1]]}?" if a.shape[1] in _KNOWN_LAYOUTS
                                               else "") + "; convert to COCO-17 or H36M-17 first)"
        raise InputError(f"input {path}: keypoints of shape {a.shape}{hint}; expected (N, 17, 2) or (N, 17, 3) "
                         "(x, y[, confidence]) with 17 joints in the COCO-17 or H36M-17 order.")
    if len(a) == 0:
        raise InputError(f"input {path}: no frames (keypoints of shape {a.shape}).")
    has_conf = a.shape[-1] == 3
    conf = a[..., 2].copy() if has_conf else np.ones(a.shape[:2])
    return a[..., :2].copy(), conf, has_conf


def check_values(raw: RawKeypoints, min_confidence: float) -> RawKeypoints:
    """NaN/inf rules: confidences must be finite; coordinates may be NaN/inf only for keypoints whose
    confidence is below ``min_confidence`` (they are missing anyway and are set to 0 here)."""
    bad_conf = ~np.isfinite(raw.confidence)
    if bad_conf.any():
        f, j = np.argwhere(bad_conf)[0]
        raise InputError(f"input {raw.source}: {int(bad_conf.sum())} confidences are NaN/inf (first: frame {f}, "
                         f"keypoint {j}); expected finite numbers (0 for a missing keypoint).")
    bad = ~np.isfinite(raw.keypoints).all(-1)
    fatal = bad & (raw.confidence >= min_confidence)
    if fatal.any():
        f, j = np.argwhere(fatal)[0]
        where = "" if raw.has_confidence else " (the file has no confidence column)"
        raise InputError(f"input {raw.source}: {int(fatal.sum())} keypoints have NaN/inf coordinates{where} "
                         f"(first: frame {f}, keypoint {j}); mark missing keypoints with a confidence below "
                         f"{min_confidence} in a third column instead.")
    if bad.any():
        raw.keypoints = np.where(bad[..., None], 0.0, raw.keypoints)
        raw.notes.append(f"{int(bad.sum())} low-confidence keypoints had NaN/inf coordinates (treated as missing)")
    return raw


def to_h36m(raw: RawKeypoints, fmt: str, min_confidence: float):
    """(keypoints (N, 17, 2), confidence (N, 17)) in the H36M-17 order."""
    if fmt not in FORMATS:
        raise InputError(f"input {raw.source}: unknown --format {fmt!r}; expected one of {FORMATS}.")
    if fmt == "h36m17":
        return raw.keypoints, raw.confidence
    return coco.coco_to_h36m(raw.keypoints, raw.confidence, min_confidence=min_confidence)


# ---------------------------------------------------------------------------------------------- missing joints
@dataclass
class FillResult:
    keypoints: np.ndarray  # (M, 17, 2) kept frames, missing joints filled
    kept: np.ndarray  # (M,) indices of the kept frames in the input
    filled: np.ndarray  # (M, 17) bool: joint was filled from an earlier frame
    skipped: list  # [{'index': i, 'reason': str}] for each skipped frame


def fill_missing(keypoints, confidence, min_confidence: float = DEFAULT_MIN_CONFIDENCE,
                 max_gap: int = DEFAULT_MAX_GAP, max_missing: int = DEFAULT_MAX_MISSING) -> FillResult:
    """The missing-joint rule (:mod:`itespy.predict` docstring, step 3). Frames are taken in the given order.

    A joint is missing when ``confidence < min_confidence``. It is filled with its pelvis-relative offset
    in the last frame where it was observed (not filled), added to the current pelvis; a missing pelvis is
    copied from that frame as is. Frames with more than ``max_missing`` missing joints, or with a missing
    joint not observed within the previous ``max_gap`` frames, are skipped."""
    kp = np.asarray(keypoints, dtype=np.float64)
    missing = ~(np.asarray(confidence, dtype=np.float64) >= min_confidence)
    n = len(kp)
    last_seen = np.full(NUM_JOINTS, -1)  # frame index of the last real observation of each joint
    last_value = np.zeros((NUM_JOINTS, 2))  # pelvis-relative offset there (absolute for the pelvis)
    out, kept, filled, skipped = [], [], [], []
    for i in range(n):
        miss = missing[i]
        if miss.sum() > max_missing:
            skipped.append({"index": i, "reason": f"{int(miss.sum())} of 17 joints missing (> {max_missing})"})
            _remember(kp[i], miss, i, last_seen, last_value)
            continue
        stale = miss & ((last_seen < 0) | (i - last_seen > max_gap))
        if stale.any():
            names = ", ".join(JOINT_NAMES[j] for j in np.flatnonzero(stale))
            skipped.append({"index": i, "reason": f"missing {names}, not seen in the previous {max_gap} frames"})
            _remember(kp[i], miss, i, last_seen, last_value)
            continue
        pose = kp[i].copy()
        if miss[ROOT]:
            pose[ROOT] = last_value[ROOT]
        for j in np.flatnonzero(miss):
            if j != ROOT:
                pose[j] = pose[ROOT] + last_value[j]
        _remember(kp[i], miss, i, last_seen, last_value)
        out.append(pose)
        kept.append(i)
        filled.append(miss.copy())
    return FillResult(np.array(out).reshape(-1, NUM_JOINTS, 2), np.array(kept, dtype=np.int64),
                      np.array(filled, dtype=bool).reshape(-1, NUM_JOINTS), skipped)


def _remember(pose, miss, i, last_seen, last_value):
    """Record the observed joints of frame i (offsets need an observed pelvis in the same frame)."""
    seen = ~miss
    if seen[ROOT]:
        last_value[ROOT] = pose[ROOT]
        last_seen[ROOT] = i
        others = seen.copy()
        others[ROOT] = False
        last_value[others] = pose[others] - pose[ROOT]
        last_seen[others] = i


# ---------------------------------------------------------------------------------------------- normalisation
def normalise_pixels(pixels, mode: str = "auto", train_scale: float | None = None, focal=None,
                     train_focal=None, source: str = "input"):
    """Pixels (M, 17, 2) -> model-space 2D (M, 17, 2) float32 and a dict describing what was done.

    ``mode='sequence'``: ``(px - root px) * s`` with one ``s`` for the whole sequence, chosen so the mean
    pelvis-to-head 2D length is 1/5 (:func:`itespy.geometry.normalisation_scale`); focal not needed.
    ``mode='checkpoint'``: ``(px - root px) / focal * train_scale`` (as the training data); ``focal``
    defaults to the training camera's ``train_focal``. ``mode='auto'``: checkpoint if ``focal`` and
    ``train_scale`` are both known, else sequence."""
    if mode not in NORMALISE_MODES:
        raise ValueError(f"normalise: expected one of {NORMALISE_MODES}, got {mode!r}")
    px = np.asarray(pixels, dtype=np.float64)
    if mode == "auto":
        mode = "checkpoint" if (focal is not None and train_scale is not None) else "sequence"
    info = {"mode": mode}
    if mode == "checkpoint":
        if train_scale is None:
            raise ValueError("normalise='checkpoint': the run directory records no 2D normalisation scale "
                             "(normalisation.json); use normalise='sequence'.")
        if focal is None:
            if train_focal is None:
                raise ValueError("normalise='checkpoint': no focal length; pass --focal (pixels).")
            focal, info["focal_source"] = train_focal, "the training camera's (assumed: same camera)"
        else:
            info["focal_source"] = "given"
        focal_arr = np.broadcast_to(np.asarray(focal, dtype=np.float64), (2,))
        if not (np.isfinite(focal_arr).all() and (focal_arr > 0).all()):
            raise ValueError(f"focal length: expected a positive number of pixels, got {focal!r}")
        out = geometry.pixels_to_normalised(px, focal_arr, float(train_scale))
        info.update(focal_px=focal_arr.tolist(), scale=float(train_scale))
    else:
        centred = geometry.root_centre(px)
        try:
            per_pixel = geometry.normalisation_scale(centred)
        except ValueError:
            raise InputError(f"input {source}: the pelvis and head coincide in every frame (pelvis-to-head "
                             "2D length 0); expected real poses.") from None
        out = geometry.pixels_to_normalised(px, 1.0, per_pixel)
        info.update(scale_per_pixel=per_pixel, mean_pelvis_head_px=geometry.TARGET_ROOT_HEAD_2D / per_pixel)
    length = np.linalg.norm(out[:, HEAD] - out[:, ROOT], axis=-1).mean()
    info["mean_pelvis_head_2d"] = float(length)
    ratio = length / geometry.TARGET_ROOT_HEAD_2D
    if not 0.5 <= ratio <= 2.0:
        info["warning"] = (f"the mean pelvis-to-head 2D length is {ratio:.2f} x the training data's; the models "
                           "may extrapolate badly (try --normalise sequence).")
    return out.astype(np.float32), info


def jsonable(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)

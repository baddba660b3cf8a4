"""Lift your own 2D keypoints to 3D with a trained ITES run (``python -m itespy predict``).

    python -m itespy predict --checkpoint runs/smoke --input my_video.json --format coco17 \\
        --out my_video_3d.npz --html my_video_3d.html

Pipeline (each step documented in docs/your_keypoints.md):

1. **Read** (:func:`read_keypoints`): ``.npz`` with ``keypoints`` (N, 17, 2) or (N, 17, 3) (third column:
   confidence); ``.json`` as a COCO results list (per ``image_id`` the person with the highest ``score``
   is kept), a COCO annotation file (``{"annotations": [...]}``), ``{"keypoints": nested list}`` or a plain
   nested list. Anything else raises :class:`InputError` naming the file.
2. **Convert** COCO-17 to H36M-17 (:func:`itespy.coco.coco_to_h36m`, confidences = minimum of the sources).
3. **Missing joints** (:func:`fill_missing`): a joint is missing when its confidence is below
   ``min_confidence`` (default 0.3). It is filled from the previous frame: its offset from the pelvis in
   the last frame where it was seen is added to the current pelvis (a missing pelvis is copied as is).
   A frame is **skipped** (and reported, with the reason) when more than ``max_missing`` joints (default
   8) are missing, or when a missing joint was not seen in the previous ``max_gap`` frames (default 10).
4. **Normalise** (:func:`normalise_pixels`) pixels into the model's 2D space. ``sequence``: root-centre and
   scale the whole sequence so its mean pelvis-to-head 2D length is 1/5, as the training data is (the
   focal length then cancels out). ``checkpoint``: ``(px - root px) / focal * scale`` with the training
   run's ``scale`` (normalisation.json) and your camera's ``--focal``. ``auto`` (default): ``checkpoint``
   when ``--focal`` is given and the run recorded its scale, else ``sequence``.
5. **Predict** with the run's teacher (R̂ Ŷt) and student (Ŷs), root-centred.

Outputs are in **model units** (the pelvis at depth 5; pelvis-to-head about 1). Unsupervised lifting
recovers the 3D shape only **up to scale**: nothing in a 2D image says how big the person is. Multiply
by (a known length in mm) / (the same length in the prediction) to get millimetres.

All files are rendered in memory first and then written atomically, so an error leaves no partial
output behind.
"""
from __future__ import annotations

import io
import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import coco, geometry
from .skeleton import HEAD, JOINT_NAMES, NUM_JOINTS, ROOT

FORMATS = ("h36m17", "coco17")
NORMALISE_MODES = ("auto", "sequence", "checkpoint")
DEFAULT_MIN_CONFIDENCE = coco.DEFAULT_MIN_CONFIDENCE  # 0.3
DEFAULT_MAX_GAP = 10  # frames: how far back a missing joint may be taken from
DEFAULT_MAX_MISSING = 8  # a frame with more missing joints than this is skipped
SCALE_NOTE = ("3D outputs are root-relative, in model units (pelvis at depth t = 5, pelvis-to-head about 1). "
              "Unsupervised lifting recovers the shape only up to scale: multiply by a known length in mm "
              "divided by the same length in the prediction to get millimetres.")
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
    """Read a keypoint file (see the module docstring for the formats). Raises :class:`InputError`."""
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
    kp, conf, has_conf = _as_frames(arrays["keypoints"], path)
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
    kp, conf, has_conf = _as_frames(data, path)
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
    kp, conf, has_conf = _as_frames(kp, path)
    return RawKeypoints(kp, conf, frames, str(path), has_conf, notes)


def _as_frames(array, path):
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
    """The missing-joint rule (module docstring, step 3). Frames are taken in the given order.

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


# ---------------------------------------------------------------------------------------------- checkpoint
def load_run(checkpoint, device="cpu") -> dict:
    """{'teacher': model or None, 'student': model or None, 'config': Config, 'normalisation': dict,
    'path': str} from a run directory (or one teacher.pt / student.pt file in it)."""
    from .train import load_model, resolve_device
    path = Path(checkpoint)
    if not path.exists():
        raise FileNotFoundError(f"--checkpoint {path}: not found; expected a run directory written by "
                                "`itespy train` (with teacher.pt and/or student.pt).")
    files = {p.stem: p for p in ([path] if path.is_file() else [path / "teacher.pt", path / "student.pt"])
             if p.exists()}
    files = {k: v for k, v in files.items() if k in ("teacher", "student")}
    if not files:
        raise FileNotFoundError(f"--checkpoint {path}: no teacher.pt or student.pt; expected a run directory "
                                "written by `itespy train`.")
    run_dir = path.parent if path.is_file() else path
    dev = resolve_device(device) if isinstance(device, str) else device
    out = {"teacher": None, "student": None, "path": str(path), "device": str(dev)}
    for stage, file in files.items():
        out[stage], out["config"] = load_model(file, stage, dev)
    norm_path = run_dir / "normalisation.json"
    out["normalisation"] = json.loads(norm_path.read_text()) if norm_path.exists() else {}
    return out


# ---------------------------------------------------------------------------------------------- prediction
@dataclass
class Prediction:
    """Results of :func:`predict_keypoints` (M kept frames)."""
    teacher: np.ndarray | None  # (M, 17, 3) model units, root-centred, R̂ Ŷt
    student: np.ndarray | None  # (M, 17, 3) model units, root-centred
    input_2d: np.ndarray  # (M, 17, 2) model-space 2D input
    pixels: np.ndarray  # (M, 17, 2) H36M-17 pixels after filling
    confidence: np.ndarray  # (M, 17) propagated confidences
    filled: np.ndarray  # (M, 17) bool
    frame_index: np.ndarray  # (M,) positions in the input
    frame_id: np.ndarray  # (M,) frame ids (COCO image_id, else = frame_index)
    report: dict
    image_size: tuple | None = None

    def npz_bytes(self) -> bytes:
        arrays = {"input_2d": self.input_2d, "keypoints_px": self.pixels.astype(np.float32),
                  "confidence": self.confidence.astype(np.float32), "filled": self.filled,
                  "frame_index": self.frame_index, "frame_id": self.frame_id,
                  "skipped_index": np.array([s["index"] for s in self.report["skipped"]], dtype=np.int64),
                  "joint_names": np.array(JOINT_NAMES), "units": np.array(SCALE_NOTE),
                  "report": np.array(json.dumps(self.report, sort_keys=True, default=_jsonable))}
        for name in ("teacher", "student"):
            if getattr(self, name) is not None:
                arrays[name] = getattr(self, name).astype(np.float32)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    def viewer_html(self, title: str | None = None) -> str:
        return viewer_html(self, title)

    def png_frames(self, step: int = 1):
        return png_frames(self, step)


def _jsonable(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def predict_keypoints(run, keypoints, confidence=None, *, fmt: str = "h36m17", frame_id=None,
                      source: str = "<array>", min_confidence: float = DEFAULT_MIN_CONFIDENCE,
                      max_gap: int = DEFAULT_MAX_GAP, max_missing: int = DEFAULT_MAX_MISSING,
                      normalise: str = "auto", focal=None, image_size=None, device="cpu",
                      notes=None) -> Prediction:
    """Lift pixel keypoints (N, 17, 2|3) in the ``fmt`` joint order with a run (a directory, or the dict
    of :func:`load_run`). Returns a :class:`Prediction`; raises :class:`InputError` for unusable input."""
    kp, conf, has_conf = _as_frames(keypoints, source)
    if confidence is not None:
        if has_conf:
            raise InputError(f"input {source}: confidences given twice (third column and `confidence`).")
        conf, has_conf = np.asarray(confidence, dtype=np.float64), True
        if conf.shape != kp.shape[:2]:
            raise InputError(f"input {source}: confidence of shape {conf.shape}, expected {kp.shape[:2]}.")
    frame_id = np.arange(len(kp)) if frame_id is None else np.asarray(frame_id).reshape(-1)
    if len(frame_id) != len(kp):
        raise InputError(f"input {source}: {len(frame_id)} frame ids for {len(kp)} frames.")
    raw = RawKeypoints(kp, conf, frame_id, source, has_conf, list(notes or []))
    return _predict_raw(run, raw, fmt, min_confidence=min_confidence, max_gap=max_gap, max_missing=max_missing,
                        normalise=normalise, focal=focal, image_size=image_size, device=device)


def predict_file(run, path, fmt: str, **kwargs) -> Prediction:
    """:func:`read_keypoints` then :func:`predict_keypoints` (same keyword arguments)."""
    if fmt not in FORMATS:
        raise InputError(f"input {path}: unknown format {fmt!r}; expected one of {FORMATS}.")
    raw = read_keypoints(path)
    return _predict_raw(run, raw, fmt, **kwargs)


def _predict_raw(run, raw: RawKeypoints, fmt, *, min_confidence=DEFAULT_MIN_CONFIDENCE, max_gap=DEFAULT_MAX_GAP,
                 max_missing=DEFAULT_MAX_MISSING, normalise="auto", focal=None, image_size=None, device="cpu"):
    from .evaluate import predicted_poses
    if not 0 <= max_missing <= NUM_JOINTS or max_gap < 0:
        raise ValueError(f"max_missing must be in 0..17 and max_gap >= 0, got {max_missing}, {max_gap}")
    raw = check_values(raw, min_confidence)
    h36m, conf = to_h36m(raw, fmt, min_confidence)
    fill = fill_missing(h36m, conf, min_confidence, max_gap, max_missing)
    if len(fill.kept) == 0:
        first = fill.skipped[0]["reason"] if fill.skipped else "no frames"
        raise InputError(f"input {raw.source}: no usable frame: all {len(h36m)} frames were skipped by the "
                         f"missing-joint rule (e.g. frame 0: {first}); check --format and --min-confidence.")
    if not isinstance(run, dict):
        run = load_run(run, device)
    norm = run.get("normalisation") or {}
    teacher_output = getattr(run.get("config"), "teacher_output", "lifted")
    x2d, norm_info = normalise_pixels(fill.keypoints, normalise, norm.get("scale"), focal, norm.get("focal_px"),
                                      raw.source)
    if normalise in ("auto", "checkpoint") and focal is not None and norm.get("scale") is None:
        norm_info["note"] = "the run records no normalisation scale (normalisation.json); used the per-sequence rule"
    preds = {stage: None if run.get(stage) is None else
             predicted_poses(run[stage], x2d, run.get("device", "cpu"), teacher_output=teacher_output).astype(np.float32)
             for stage in ("teacher", "student")}
    notes = list(raw.notes)
    if image_size is not None:
        w, h = image_size
        outside = ((fill.keypoints < 0) | (fill.keypoints > np.array([w, h]))).any(-1)
        if outside.any():
            notes.append(f"{int(outside.sum())} joints of {int(outside.any(-1).sum())} frames lie outside the "
                         f"{w}x{h} image")
    filled_joints = fill.filled.sum(0)
    skipped = [dict(s, frame_id=_jsonable(raw.frame_id[s["index"]])) for s in fill.skipped]
    report = {"input": raw.source, "format": fmt, "frames_read": int(len(h36m)), "frames_used": int(len(fill.kept)),
              "frames_skipped": len(skipped), "skipped": skipped, "joints_filled": int(fill.filled.sum()),
              "joints_filled_by_name": {JOINT_NAMES[j]: int(c) for j, c in enumerate(filled_joints) if c},
              "has_confidence": bool(raw.has_confidence), "min_confidence": min_confidence, "max_gap": max_gap,
              "max_missing": max_missing, "normalisation": norm_info, "checkpoint": run.get("path"),
              "models": [s for s in ("teacher", "student") if preds[s] is not None], "units": SCALE_NOTE,
              "notes": notes}
    return Prediction(preds["teacher"], preds["student"], x2d, fill.keypoints, conf[fill.kept], fill.filled,
                      fill.kept, raw.frame_id[fill.kept], report, None if image_size is None else tuple(image_size))


def summary_lines(pred: Prediction) -> list:
    """Human-readable summary of a prediction (what the CLI prints)."""
    r = pred.report
    lines = [f"input {r['input']} ({r['format']}): {r['frames_read']} frames read, {r['frames_used']} used, "
             f"{r['frames_skipped']} skipped; {r['joints_filled']} joints filled from earlier frames"]
    lines += [f"  note: {n}" for n in r["notes"]]
    for s in r["skipped"][:5]:
        lines.append(f"  skipped frame {s['index']} (id {s['frame_id']}): {s['reason']}")
    if len(r["skipped"]) > 5:
        lines.append(f"  ... and {len(r['skipped']) - 5} more skipped frames (see the report in the .npz)")
    n = r["normalisation"]
    how = (f"per-sequence scale (mean pelvis-to-head {n['mean_pelvis_head_px']:.1f} px -> 1/5)"
           if n["mode"] == "sequence" else f"checkpoint scale {n['scale']:.4g}, focal {n['focal_px'][0]:.1f} px "
                                           f"({n['focal_source']})")
    lines.append(f"normalisation: {how}")
    for key in ("note", "warning"):
        if key in n:
            lines.append(f"  {key}: {n[key]}")
    lines.append(f"models: {', '.join(r['models'])} from {r['checkpoint']}")
    lines.append(SCALE_NOTE)
    return lines


# ---------------------------------------------------------------------------------------------- rendering
VIEW_EYES = {"camera view": dict(x=0.0, y=0.0, z=-2.2), "three-quarter": dict(x=0.9, y=-0.5, z=-1.6),
             "side": dict(x=2.2, y=0.0, z=0.0), "top": dict(x=0.0, y=-2.2, z=0.01)}


def viewer_html(pred: Prediction, title: str | None = None) -> str:
    """A self-contained HTML page (plotly.js inlined, works offline): the 2D input and the teacher /
    student 3D poses, a frame slider with play/pause, drag to rotate, and buttons for preset views."""
    import plotly.graph_objects as go
    import plotly.io as pio
    from plotly.subplots import make_subplots

    from .viz import IMAGE_VIEW_CAMERA, _scene_layout, _skeleton_traces
    poses = {name: getattr(pred, name) for name in ("teacher", "student") if getattr(pred, name) is not None}
    names = ["2D input (pixels)"] + [f"{k} 3D (model units)" for k in poses]
    scenes = ["scene" if k == 0 else f"scene{k + 1}" for k in range(len(poses))]
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.03,
                        specs=[[{"type": "xy"}] + [{"type": "scene"}] * len(poses)])
    # frame 0 is built with the styled traces of itespy.viz; the other frames reuse them as templates
    # (plain dicts, only the coordinates change), which is much faster than validating 13 traces x N frames
    first = _skeleton_traces(pred.pixels[0], "input")
    first.append(go.Scatter(x=[], y=[], mode="markers", name="filled", hoverinfo="name",
                            marker=dict(symbol="x", size=9, color="#ff7f0e")))
    for k, name in enumerate(poses):
        first += _skeleton_traces(poses[name][0], name, scene=scenes[k])
    for k, trace in enumerate(first):
        fig.add_trace(trace, row=1, col=1 if k < 5 else 2 + (k - 5) // 4)
    radius = 1.1 * max([float(np.abs(v).max()) for v in poses.values()] + [1e-6])
    for scene in scenes:
        fig.layout[scene].update(_scene_layout(radius))
    if pred.image_size is not None:
        w, h = pred.image_size
        fig.update_xaxes(range=[0, w], row=1, col=1)
        fig.update_yaxes(range=[h, 0], row=1, col=1, scaleanchor="x")
    else:
        lo, hi = pred.pixels.min((0, 1)), pred.pixels.max((0, 1))
        pad = 0.1 * float((hi - lo).max())
        fig.update_xaxes(range=[lo[0] - pad, hi[0] + pad], row=1, col=1)
        fig.update_yaxes(range=[hi[1] + pad, lo[1] - pad], row=1, col=1, scaleanchor="x")
    animate = dict(mode="immediate", frame=dict(duration=0, redraw=True), transition=dict(duration=0))
    steps = [dict(method="animate", label=str(_jsonable(fid)), args=[[str(i)], animate])
             for i, fid in enumerate(pred.frame_id)]
    views = [dict(label=label, method="relayout",
                  args=[{f"{s}.camera": dict(IMAGE_VIEW_CAMERA, eye=eye) for s in scenes}])
             for label, eye in VIEW_EYES.items()]
    play = dict(mode="immediate", frame=dict(duration=80, redraw=True), transition=dict(duration=0),
                fromcurrent=True)
    fig.update_layout(
        title=title or f"ITES predictions for {Path(str(pred.report['input'])).name}",
        height=520, width=max(900, 420 * len(names)), margin=dict(l=30, r=10, t=90, b=10), showlegend=False,
        sliders=[dict(active=0, steps=steps, currentvalue=dict(prefix="frame "), pad=dict(t=40), len=0.9,
                      x=0.05)],
        updatemenus=[dict(type="buttons", direction="left", x=0.0, y=-0.02, xanchor="left", yanchor="top",
                          buttons=[dict(label="play", method="animate", args=[None, play]),
                                   dict(label="pause", method="animate", args=[[None], animate])]),
                     dict(type="buttons", direction="left", x=1.0, y=1.12, xanchor="right", yanchor="top",
                          buttons=views)],
        annotations=list(fig.layout.annotations) + [dict(
            text="Drag a 3D panel to rotate it. Model units, root-relative: shape only up to scale. "
                 "Orange x: joints filled from an earlier frame.",
            showarrow=False, xref="paper", yref="paper", x=0.0, y=1.13, xanchor="left", font=dict(size=11))])
    spec = fig.to_plotly_json()
    templates = spec["data"]
    spec["frames"] = [{"name": str(i), "traces": list(range(len(templates))),
                       "data": _frame_traces(templates, pred, poses, i)} for i in range(len(pred.pixels))]
    return pio.to_html(spec, include_plotlyjs=True, full_html=True, auto_play=False, validate=False,
                       div_id="itespy-viewer")


def _frame_traces(templates, pred, poses, i) -> list:
    """Copies of the trace dicts of frame 0 with the coordinates of frame ``i`` (same order)."""
    from .viz import _GROUPS, _segments
    out = []

    def skeleton(pose, start):
        for k, bones in enumerate(_GROUPS.values()):
            out.append({**templates[start + k], **dict(zip("xyz", _segments(pose, bones)))})
        out.append({**templates[start + 3], **dict(zip("xyz", pose.T.tolist()))})

    skeleton(pred.pixels[i], 0)
    gaps = pred.filled[i]
    out.append({**templates[4], "x": pred.pixels[i, gaps, 0].tolist(), "y": pred.pixels[i, gaps, 1].tolist()})
    for k, seq in enumerate(poses.values()):
        skeleton(seq[i].astype(np.float64), 5 + 4 * k)
    return out


def png_frames(pred: Prediction, step: int = 1):
    """[(frame index, PNG bytes)] for every ``step``-th kept frame: 2D input + teacher + student (matplotlib)."""
    import matplotlib
    import matplotlib.pyplot as plt

    from .viz import plot_skeleton_2d, plot_skeleton_3d
    if step < 1:
        raise ValueError(f"png step: expected a positive integer, got {step}")
    poses = {name: getattr(pred, name) for name in ("teacher", "student") if getattr(pred, name) is not None}
    out = []
    with matplotlib.rc_context({"figure.max_open_warning": 0}):
        for i in range(0, len(pred.pixels), step):
            fig = plt.figure(figsize=(3.2 * (1 + len(poses)), 3.4))
            try:
                ax = fig.add_subplot(1, 1 + len(poses), 1)
                plot_skeleton_2d(ax, pred.pixels[i])
                gaps = pred.filled[i]
                if gaps.any():
                    ax.plot(pred.pixels[i, gaps, 0], pred.pixels[i, gaps, 1], "x", color="#ff7f0e", markersize=8)
                if pred.image_size is not None:
                    ax.set_aspect("equal", adjustable="box")
                    ax.set_xlim(0, pred.image_size[0])
                    ax.set_ylim(pred.image_size[1], 0)
                ax.set_title(f"frame {_jsonable(pred.frame_id[i])}: 2D input (pixels)", fontsize=9)
                for k, (name, seq) in enumerate(poses.items()):
                    ax = fig.add_subplot(1, 1 + len(poses), k + 2, projection="3d")
                    plot_skeleton_3d(ax, seq[i])
                    ax.view_init(elev=12, azim=-55)
                    ax.set_xticklabels([]), ax.set_yticklabels([]), ax.set_zticklabels([])
                    ax.set_xlabel(""), ax.set_ylabel(""), ax.set_zlabel("")
                    ax.set_title(f"{name} 3D (model units, up to scale)", fontsize=9)
                fig.tight_layout()
                buffer = io.BytesIO()
                fig.savefig(buffer, format="png", dpi=90, metadata={"Software": None})
                out.append((int(pred.frame_index[i]), buffer.getvalue()))
            finally:
                plt.close(fig)
    return out


# ---------------------------------------------------------------------------------------------- files and CLI
def run(checkpoint, input, fmt: str, *, out=None, html=None, png=None, png_step: int = 1, **kwargs) -> tuple:
    """Predict from a file and write the requested outputs; returns (Prediction, [written paths]).

    Every output is rendered in memory before the first byte is written, and each file is written
    atomically: on any error nothing new is left on disk."""
    from .io import atomic_write_bytes
    input_path = Path(input)
    targets = {"--out": (out, (".npz",)), "--html": (html, (".html", ".htm"))}
    for flag, (value, suffixes) in targets.items():
        if value is None:
            continue
        if Path(value).suffix.lower() not in suffixes:
            raise ValueError(f"{flag} {value}: expected a file name ending in {' or '.join(suffixes)}.")
        if input_path.exists() and Path(value).resolve() == input_path.resolve():
            raise ValueError(f"{flag} {value}: this is the input file; choose another name.")
    if png is not None and Path(png).exists() and not Path(png).is_dir():
        raise ValueError(f"--png {png}: exists and is not a folder.")
    pred = predict_file(checkpoint, input, fmt, **kwargs)
    payload = {}
    if out is not None:
        payload[Path(out)] = pred.npz_bytes()
    if html is not None:
        payload[Path(html)] = pred.viewer_html().encode("utf-8")
    if png is not None:
        for index, data in pred.png_frames(png_step):
            payload[Path(png) / f"frame_{index:05d}.png"] = data
    written = [atomic_write_bytes(path, data) for path, data in payload.items()]
    return pred, written


def add_arguments(parser) -> None:
    """The flags of ``python -m itespy predict``."""
    parser.add_argument("--checkpoint", required=True, help="run directory with teacher.pt / student.pt")
    parser.add_argument("--input", required=True, help=".npz (keypoints (N,17,2|3)) or .json (COCO results or "
                                                        "nested list)")
    parser.add_argument("--format", required=True, choices=FORMATS, dest="fmt",
                        help="joint order of the input: h36m17 (the kit's) or coco17 (most 2D detectors)")
    parser.add_argument("--image-size", type=int, nargs=2, metavar=("W", "H"),
                        help="image size in pixels (frames the 2D panel; reports joints outside the image)")
    parser.add_argument("--focal", type=float, help="focal length in pixels; with it the run's own 2D "
                                                    "normalisation is used (see --normalise)")
    parser.add_argument("--normalise", choices=NORMALISE_MODES, default="auto",
                        help="auto (default): 'checkpoint' if --focal is given and the run recorded its scale, "
                             "else 'sequence' (mean pelvis-to-head 2D length -> 1/5 over the sequence)")
    parser.add_argument("--min-confidence", type=float, default=DEFAULT_MIN_CONFIDENCE,
                        help=f"joints below this confidence are missing (default {DEFAULT_MIN_CONFIDENCE})")
    parser.add_argument("--max-gap", type=int, default=DEFAULT_MAX_GAP,
                        help=f"fill a missing joint from at most this many frames back (default {DEFAULT_MAX_GAP})")
    parser.add_argument("--max-missing", type=int, default=DEFAULT_MAX_MISSING,
                        help=f"skip frames with more missing joints (default {DEFAULT_MAX_MISSING})")
    parser.add_argument("--out", help="write predictions to this .npz")
    parser.add_argument("--html", help="write a self-contained 3D viewer (works offline) to this .html")
    parser.add_argument("--png", help="write one PNG per frame into this folder")
    parser.add_argument("--png-step", type=int, default=1, help="with --png: every k-th frame (default 1)")
    parser.add_argument("--device", default="cpu", help="cpu (default) | auto | cuda | cuda:N")


def run_from_args(args) -> int:
    """Entry point for the CLI (``args`` from a parser set up by :func:`add_arguments`)."""
    if args.focal is not None and not (math.isfinite(args.focal) and args.focal > 0):
        raise ValueError(f"--focal {args.focal}: expected a positive focal length in pixels.")
    if args.image_size is not None and min(args.image_size) <= 0:
        raise ValueError(f"--image-size {args.image_size}: expected two positive integers W H.")
    pred, written = run(args.checkpoint, args.input, args.fmt, out=args.out, html=args.html, png=args.png,
                        png_step=args.png_step, image_size=args.image_size, focal=args.focal,
                        normalise=args.normalise, min_confidence=args.min_confidence, max_gap=args.max_gap,
                        max_missing=args.max_missing, device=args.device)
    for line in summary_lines(pred):
        print(line)
    if written:
        pngs = [p for p in written if p.suffix == ".png"]
        for path in written:
            if path.suffix != ".png":
                print(f"wrote {path}")
        if pngs:
            print(f"wrote {len(pngs)} PNGs into {pngs[0].parent}")
    else:
        print("nothing written (pass --out, --html or --png)")
    return 0

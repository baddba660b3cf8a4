"""Running a trained run on keypoints for :mod:`itespy.predict` (pipeline step 5).

:func:`load_run` (a run directory -> models), :func:`predict_keypoints` / :func:`predict_file` (clean,
normalise and lift; returns a :class:`Prediction`) and :func:`summary_lines` (what the CLI prints).
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..skeleton import JOINT_NAMES, NUM_JOINTS
from .inputs import (DEFAULT_MAX_GAP, DEFAULT_MAX_MISSING, DEFAULT_MIN_CONFIDENCE, FORMATS, InputError,
                     RawKeypoints, as_frames, jsonable, check_values, fill_missing, normalise_pixels,
                     read_keypoints, to_h36m)
from .viewer import png_frames, viewer_html

SCALE_NOTE = ("3D outputs are root-relative, in model units (pelvis at depth t = 5, pelvis-to-head about 1). "
              "Unsupervised lifting recovers the shape only up to scale: multiply by a known length in mm "
              "divided by the same length in the prediction to get millimetres.")



# ---------------------------------------------------------------------------------------------- checkpoint
def load_run(checkpoint, device="cpu") -> dict:
    """{'teacher': model or None, 'student': model or None, 'config': Config, 'normalisation': dict,
    'path': str} from a run directory (or one teacher.pt / student.pt file in it)."""
    from ..devices import resolve_device
    from ..pretrained import resolve
    from ..runfolder import STAGE_FILES, RunFolder
    path = resolve(checkpoint)
    if not path.exists():
        raise FileNotFoundError(f"--checkpoint {path}: not found; expected a run directory written by "
                                "`itespy train` (with teacher.pt and/or student.pt).")
    if path.is_file() and path.stem not in STAGE_FILES:
        raise FileNotFoundError(f"--checkpoint {path}: no teacher.pt or student.pt; expected a run directory "
                                "written by `itespy train` (or one teacher.pt / student.pt file in it).")
    folder = RunFolder(path.parent if path.is_file() else path)
    dev = resolve_device(device) if isinstance(device, str) else device
    out = {"teacher": None, "student": None, "path": str(path), "device": str(dev)}
    if path.is_file():
        out[path.stem], out["config"] = folder.load_model(path.stem, dev)
    else:
        models, out["config"] = folder.load_models(dev)
        out.update(models)
    out["normalisation"] = folder.normalisation()
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
                  "report": np.array(json.dumps(self.report, sort_keys=True, default=jsonable))}
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




def predict_keypoints(run, keypoints, confidence=None, *, fmt: str = "h36m17", frame_id=None,
                      source: str = "<array>", min_confidence: float = DEFAULT_MIN_CONFIDENCE,
                      max_gap: int = DEFAULT_MAX_GAP, max_missing: int = DEFAULT_MAX_MISSING,
                      normalise: str = "auto", focal=None, image_size=None, device="cpu",
                      notes=None) -> Prediction:
    """Lift pixel keypoints (N, 17, 2|3) in the ``fmt`` joint order with a run (a directory, or the dict
    of :func:`load_run`). Returns a :class:`Prediction`; raises :class:`InputError` for unusable input."""
    kp, conf, has_conf = as_frames(keypoints, source)
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
    from ..evaluate import predicted_poses
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
    skipped = [dict(s, frame_id=jsonable(raw.frame_id[s["index"]])) for s in fill.skipped]
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


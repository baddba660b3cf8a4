"""One experiment end to end: data -> stage 1 teacher -> stage 2 student -> evaluation -> files.

``run_experiment`` is what ``python -m itespy train`` and every notebook call. Outputs in ``out_dir``:
config.json, run_info.json, teacher.pt, student.pt, history.json, metrics.json (see itespy.train).
A finished run directory is never overwritten: rerunning returns its stored metrics (``resume``) or
refuses with a clear message."""
from __future__ import annotations

import json
import time
from pathlib import Path

from .config import STAGES, Config
from .evaluate import evaluate_model
from .io import atomic_write_json
from .train import load_model, resolve_device, run_info, save_model, train_student, train_teacher


class RunDirectoryError(RuntimeError):
    """The output directory holds results of another run."""


def _prepare_dir(out: Path, cfg: Config, resume: bool, overwrite: bool):
    config_path = out / "config.json"
    if config_path.exists() and not overwrite:
        saved = json.loads(config_path.read_text())
        if not resume:
            raise RunDirectoryError(
                f"output directory {out}: it already holds a run (config.json). Pass --resume to continue or "
                "reuse it, --overwrite to replace it, or choose another --out; earlier results are never "
                "silently replaced.")
        if not _same(saved, cfg):
            changed = sorted(k for k in saved if saved.get(k) != cfg.to_dict().get(k) and k != "device")
            raise RunDirectoryError(f"output directory {out}: --resume with a different configuration "
                                    f"(fields {changed}); use another --out.")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(config_path, cfg.to_dict())


def run_experiment(cfg: Config, out_dir, stage: str = "both", splits=None, resume: bool = False,
                   overwrite: bool = False, progress: bool = True, teacher_dir=None) -> dict:
    """Train (the stages asked for) and evaluate. ``splits`` may pass preloaded {'train','test'} PoseSets.
    ``teacher_dir`` reuses a trained teacher from another run (stage 'student'). Returns metrics.json."""
    cfg.validate()
    if stage not in STAGES:
        raise ValueError(f"stage: expected one of {STAGES}, got {stage!r}")
    out = Path(out_dir)
    metrics_path = out / "metrics.json"
    if resume and metrics_path.exists() and not overwrite:
        saved_cfg = json.loads((out / "config.json").read_text()) if (out / "config.json").exists() else None
        if saved_cfg is not None and _same(saved_cfg, cfg):
            return json.loads(metrics_path.read_text())
    device = resolve_device(cfg.device)
    if splits is None:
        from .data import load_splits
        splits = load_splits(cfg.data, seed=cfg.seed, max_train=cfg.max_train, max_test=cfg.max_test,
                             stride=cfg.stride)
    _prepare_dir(out, cfg, resume, overwrite)
    atomic_write_json(out / "run_info.json", {**run_info(cfg, device), "stage": stage, "data_meta": _meta(splits)})
    atomic_write_json(out / "normalisation.json", normalisation_record(splits["train"]))
    train_2d = splits["train"].keypoints_2d
    history, results, t0 = {}, {"stage": stage, "data": cfg.data, "profile": cfg.profile, "seed": cfg.seed}, time.time()

    teacher = None
    if stage in ("teacher", "both"):
        if resume and (out / "teacher.pt").exists():
            teacher, _ = load_model(out / "teacher.pt", "teacher", device)
        else:
            teacher, history["teacher"] = train_teacher(cfg, train_2d, out, resume, progress)
            save_model(out / "teacher.pt", teacher, cfg, "teacher")
    elif cfg.use_kd:
        source = Path(teacher_dir) if teacher_dir is not None else out
        teacher, _ = load_model(source / "teacher.pt", "teacher", device)
    if teacher is not None:
        results["teacher"] = evaluate_model(teacher, splits["test"], device)

    if stage in ("student", "both"):
        student, history["student"] = train_student(cfg, train_2d, teacher, out, resume, progress)
        save_model(out / "student.pt", student, cfg, "student")
        results["student"] = evaluate_model(student, splits["test"], device)
    results["seconds"] = time.time() - t0
    results["device"] = str(device)
    for key, records in history.items():
        atomic_write_json(out / f"history_{key}.json", records)
    atomic_write_json(metrics_path, results)
    return results


def normalisation_record(train_set) -> dict:
    """How this run's 2D inputs were made from pixels: model 2D = (px - root px) / focal_px * scale."""
    focal = train_set.meta.get("per_frame", {}).get("focal_px")
    return {"scale": float(train_set.meta["scale"]) if "scale" in train_set.meta else None,
            "focal_px": None if focal is None or len(focal) == 0 else [float(v) for v in focal.mean(0)],
            "units": "model 2D = (pixels - root pixel) / focal_px * scale; 3D outputs in model units "
                     "(root at depth t = 5), known up to scale"}


def _same(saved: dict, cfg: Config) -> bool:
    return {k: v for k, v in saved.items() if k != "device"} == {k: v for k, v in cfg.to_dict().items() if k != "device"}


def _meta(splits) -> dict:
    return {name: {"frames": len(ps), "name": ps.name} for name, ps in splits.items()}

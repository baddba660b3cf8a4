"""One experiment end to end: data -> stage 1 teacher -> stage 2 student -> evaluation -> files.

``run_experiment`` is what ``python -m itespy train`` and every notebook call. Outputs in ``out_dir``:
config.json, run_info.json, teacher.pt, student.pt, history_teacher.json, history_student.json, metrics.json (see itespy.train).
A finished run directory is never overwritten: rerunning returns its stored metrics (``resume``) or
refuses with a clear message."""
from __future__ import annotations

import time
from pathlib import Path

from .config import RUN_FIELDS, STAGES, STUDENT_FIELDS, Config, config_key
from .data.validation import validation_split
from .evaluate import canonical_spread, evaluate_model
from .io import atomic_write_json, read_json
from .checkpoints import TEACHER_MODEL_FIELDS, load_model, save_model
from .devices import resolve_device, run_info, torch_threads
from .inference import check_keypoints_2d
from .train import train_student, train_teacher

VALIDATION_PROTOCOLS = ("mpjpe_scaled_flip", "p_mpjpe_flip")
SPREAD_POSES = 1024  # validation inputs over which the canonical pose's spread is measured


def keyed_run_dir(base, cfg: Config, stage: str = "both") -> Path:
    """``base/<teacher|run>-<key>``: one run folder per configuration (:func:`itespy.config.config_key`), so a
    notebook re-run with other settings trains into a new folder instead of refusing the old one; a teacher's
    folder is keyed by the teacher's settings only, so every student configuration finds it."""
    prefix = "teacher" if stage == "teacher" else "run"
    return Path(base) / f"{prefix}-{config_key(cfg, stage)}"


class RunDirectoryError(RuntimeError):
    """The output directory holds results of another run."""


def _prepare_dir(out: Path, cfg: Config, resume: bool, overwrite: bool, stage: str = "both"):
    config_path = out / "config.json"
    if out.exists() and not out.is_dir():
        raise RunDirectoryError(f"output directory {out}: it exists and is a file; expected a folder (or a path "
                                "that does not exist yet).")
    if config_path.exists() and not overwrite:
        saved = read_json(config_path)
        if not resume:
            raise RunDirectoryError(
                f"output directory {out}: it already holds a run (config.json). Pass --resume to continue or "
                "reuse it, --overwrite to replace it, or choose another --out; earlier results are never "
                "silently replaced.")
        if not _same(saved, cfg, stage):
            changed = sorted(k for k in saved if saved.get(k) != cfg.to_dict().get(k) and k not in _ignored(stage))
            raise RunDirectoryError(f"output directory {out}: --resume with a different configuration "
                                    f"(fields {changed}); use another --out.")
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".*.tmp"):  # temp files of atomic writes cut short by a crash
        stale.unlink(missing_ok=True)
    atomic_write_json(config_path, cfg.to_dict())


def make_validator(val_set, cfg: Config, device):
    """validate(model) -> {"mpjpe", "p_mpjpe"[, "spread"]} on the validation split (training clips); the
    teacher is scored as everywhere else (``cfg.teacher_output``) and its canonical pose's spread is logged,
    so a collapse (one canonical pose for every input) shows in the history."""
    def validate(model):
        r = evaluate_model(model, val_set, device, VALIDATION_PROTOCOLS, cfg.eval_batch_size, cfg.teacher_output)
        out = {"mpjpe": r["mpjpe_scaled_flip"]["mean"], "p_mpjpe": r["p_mpjpe_flip"]["mean"]}
        if getattr(model, "is_teacher", False):
            out["spread"] = canonical_spread(model, val_set.keypoints_2d[:SPREAD_POSES], device)
        return out
    return validate


def run_experiment(cfg: Config, out_dir, stage: str = "both", splits=None, resume: bool = False,
                   overwrite: bool = False, progress: bool = True, teacher_dir=None) -> dict:
    """Train (the stages asked for) and evaluate. ``splits`` may pass preloaded {'train','test'} PoseSets.
    ``teacher_dir`` reuses a trained teacher from another run (stage 'student'). Returns metrics.json.

    Every input is checked (configuration, data, the teacher to reuse) before ``out_dir`` is created or
    written, so a bad input leaves no partial run behind. Everything runs with ``cfg.threads`` torch threads."""
    with torch_threads(cfg.threads):
        return _run_experiment(cfg, out_dir, stage, splits, resume, overwrite, progress, teacher_dir)


def _run_experiment(cfg: Config, out_dir, stage: str = "both", splits=None, resume: bool = False,
                    overwrite: bool = False, progress: bool = True, teacher_dir=None) -> dict:
    cfg.validate()
    if stage not in STAGES:
        raise ValueError(f"stage: expected one of {STAGES}, got {stage!r}")
    for name, trained in (("teacher_epochs", stage in ("teacher", "both")),
                          ("student_epochs", stage in ("student", "both"))):
        if trained and getattr(cfg, name) < 1:
            raise ValueError(f"config.{name}: expected at least 1 epoch to train stage {stage!r}, "
                             f"got {getattr(cfg, name)}")
    out = Path(out_dir)
    metrics_path = out / "metrics.json"
    if resume and metrics_path.exists() and not overwrite:
        saved_cfg = read_json(out / "config.json") if (out / "config.json").exists() else None
        stored = read_json(metrics_path)
        wanted = {"teacher": ("teacher",), "student": ("student",), "both": ("teacher", "student")}[stage]
        if saved_cfg is not None and _same(saved_cfg, cfg, stage) and all(k in stored for k in wanted):
            return stored
    device = resolve_device(cfg.device)
    if splits is None:
        from .data import load_splits
        splits = load_splits(cfg.data, seed=cfg.seed, max_train=cfg.max_train, max_test=cfg.max_test,
                             stride=cfg.stride)
    _check_splits(splits, cfg)
    teacher = None
    if stage == "student" and cfg.use_kd:
        source = Path(teacher_dir) if teacher_dir is not None else out
        if not (source / "teacher.pt").is_file():
            raise FileNotFoundError(f"stage 'student' with L_KD on (use_kd=True) needs a trained teacher: "
                                    f"{source / 'teacher.pt'} not found. Pass --teacher RUN_DIR (teacher_dir=...), a "
                                    f"run directory of `itespy train --stage teacher`, or train stage 'both'.")
        teacher, _ = load_model(source / "teacher.pt", "teacher", device, expected=cfg, fields=TEACHER_MODEL_FIELDS)
    _prepare_dir(out, cfg, resume, overwrite, stage)
    atomic_write_json(out / "run_info.json", {**run_info(cfg, device), "stage": stage, "data_meta": _meta(splits)})
    atomic_write_json(out / "normalisation.json", normalisation_record(splits["train"]))
    train_set, val_set = validation_split(splits["train"])
    validate = make_validator(val_set, cfg, device)
    train_2d = train_set.keypoints_2d
    results, t0 = {"stage": stage, "data": cfg.data, "profile": cfg.profile, "seed": cfg.seed,
                   "frames": {"train": len(train_set), "validation": len(val_set), "test": len(splits["test"])}}, \
        time.time()

    if stage in ("teacher", "both"):
        if resume and (out / "teacher.pt").exists():
            teacher, _ = load_model(out / "teacher.pt", "teacher", device, expected=cfg)
        else:
            teacher, history = train_teacher(cfg, train_2d, out, resume, progress, validate, device)
            save_model(out / "teacher.pt", teacher, cfg, "teacher")
            atomic_write_json(out / "history_teacher.json", history)  # now: a resumed run reloads teacher.pt
    if teacher is not None:
        results["teacher"] = _scored(teacher, splits["test"], device, cfg, out / "history_teacher.json")

    if stage in ("student", "both"):
        student, history = train_student(cfg, train_2d, teacher, out, resume, progress, validate, device)
        save_model(out / "student.pt", student, cfg, "student")
        atomic_write_json(out / "history_student.json", history)
        results["student"] = _scored(student, splits["test"], device, cfg, out / "history_student.json")
    results["seconds"] = time.time() - t0
    results["device"] = str(device)
    atomic_write_json(metrics_path, results)
    return results


def _scored(model, test_set, device, cfg: Config, history_path: Path) -> dict:
    """Test metrics of a trained model, with which checkpoint was kept (from its history) when known."""
    out = evaluate_model(model, test_set, device, teacher_output=cfg.teacher_output)
    if history_path.exists():
        history = read_json(history_path)
        if history and "kept" in history[-1]:
            out["kept"] = history[-1]["kept"]
    return out


def _check_splits(splits, cfg: Config):
    """The training inputs and the test pairs must be non-empty, (N, 17, 2) / (N, 17, 3) and finite."""
    from .data.errors import check_array
    from .skeleton import NUM_JOINTS
    if not isinstance(splits, dict) or not {"train", "test"} <= set(splits):
        raise ValueError(f"splits: expected a dict with 'train' and 'test' PoseSets, got {type(splits).__name__}"
                         f"{' with keys ' + str(sorted(splits)) if isinstance(splits, dict) else ''}")
    check_keypoints_2d(splits["train"].keypoints_2d, f"training split of {cfg.data!r}: keypoints_2d", min_poses=2)
    check_keypoints_2d(splits["test"].keypoints_2d, f"test split of {cfg.data!r}: keypoints_2d", min_poses=1)
    poses = check_array(splits["test"].poses_3d, f"test split of {cfg.data!r}: poses_3d", (None, NUM_JOINTS, 3))
    if len(poses) != len(splits["test"].keypoints_2d):
        raise ValueError(f"test split of {cfg.data!r}: {len(poses)} 3D poses for "
                         f"{len(splits['test'].keypoints_2d)} 2D inputs; expected one per input")


def normalisation_record(train_set) -> dict:
    """How this run's 2D inputs were made from pixels: model 2D = (px - root px) / focal_px * scale."""
    focal = train_set.meta.get("per_frame", {}).get("focal_px")
    return {"scale": float(train_set.meta["scale"]) if "scale" in train_set.meta else None,
            "focal_px": None if focal is None or len(focal) == 0 else [float(v) for v in focal.mean(0)],
            "units": "model 2D = (pixels - root pixel) / focal_px * scale; 3D outputs in model units "
                     "(root at depth t = 5), known up to scale"}


def _same(saved: dict, cfg: Config, stage: str = "both") -> bool:
    """Whether a folder's saved configuration is ``cfg``'s; for a teacher-only folder only the teacher's
    settings count (a teacher serves every student configuration: STUDENT_FIELDS do not matter)."""
    ignored = _ignored(stage)
    new = cfg.to_dict()
    return {k: v for k, v in saved.items() if k not in ignored} == {k: v for k, v in new.items() if k not in ignored}


def _ignored(stage: str) -> set:
    """Fields that do not tell two runs of ``stage`` apart in one folder: the same rule as the folder's key
    (:func:`config_key` ignores :data:`RUN_FIELDS`), plus the student's fields for a teacher-only folder."""
    return set(RUN_FIELDS) | (set(STUDENT_FIELDS) if stage == "teacher" else set())


def _meta(splits) -> dict:
    return {name: {"frames": len(ps), "name": ps.name} for name, ps in splits.items()}

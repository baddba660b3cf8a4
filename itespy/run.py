"""One experiment end to end: data -> stage 1 teacher -> stage 2 student -> evaluation -> a run folder.

``run_experiment`` is what ``python -m itespy train`` and every notebook call. What it writes, and the rule for
"the same run", belong to :class:`itespy.runfolder.RunFolder` (``keyed_run_dir`` and ``RunDirectoryError`` are
re-exported here for the notebooks). A finished run directory is never overwritten: rerunning returns its
stored metrics (``resume``) or refuses with a clear message."""
from __future__ import annotations

import time

from .config import STAGES, Config
from .data.validation import validation_split
from .evaluate import evaluate_model, make_validator
from .checkpoints import TEACHER_MODEL_FIELDS
from .devices import resolve_device, run_info, torch_threads
from .inference import check_keypoints_2d
from .runfolder import RunDirectoryError, RunFolder, keyed_run_dir
from .train import train_student, train_teacher

__all__ = ["RunDirectoryError", "keyed_run_dir", "normalisation_record", "run_experiment"]


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
    folder = RunFolder(out_dir)
    if resume and not overwrite:
        stored = folder.stored_metrics(cfg, stage)
        if stored is not None:
            return stored
    device = resolve_device(cfg.device)
    if splits is None:
        from .data import load_splits
        splits = load_splits(cfg.data, seed=cfg.seed, max_train=cfg.max_train, max_test=cfg.max_test,
                             stride=cfg.stride)
    _check_splits(splits, cfg)
    teacher, teacher_folder = None, None
    if stage == "student" and cfg.use_kd:
        teacher_folder = RunFolder(teacher_dir) if teacher_dir is not None else folder
        if not teacher_folder.has_model("teacher"):
            raise FileNotFoundError(f"stage 'student' with L_KD on (use_kd=True) needs a trained teacher: "
                                    f"{teacher_folder.model_file('teacher')} not found. Pass --teacher RUN_DIR (teacher_dir=...), "
                                    f"a run directory of `itespy train --stage teacher`, or train stage 'both'.")
        teacher, _ = teacher_folder.load_model("teacher", device, expected=cfg, fields=TEACHER_MODEL_FIELDS)
    folder.prepare(cfg, resume, overwrite, stage)
    folder.write_run_info({**run_info(cfg, device), "stage": stage, "data_meta": _meta(splits)})
    folder.write_normalisation(normalisation_record(splits["train"]))
    train_set, val_set = validation_split(splits["train"])
    validate = make_validator(val_set, cfg, device)
    train_2d = train_set.keypoints_2d
    results, t0 = {"stage": stage, "data": cfg.data, "profile": cfg.profile, "seed": cfg.seed,
                   "frames": {"train": len(train_set), "validation": len(val_set), "test": len(splits["test"])}}, \
        time.time()

    if stage in ("teacher", "both"):
        if resume and folder.has_model("teacher"):
            teacher, _ = folder.load_model("teacher", device, expected=cfg)
            history = folder.history("teacher")
        else:
            teacher, history = train_teacher(cfg, train_2d, folder, resume, progress, validate, device)
            folder.save_model("teacher", teacher, cfg)
            folder.save_history("teacher", history)  # now: a resumed run reloads teacher.pt
        results["teacher"] = _scored(teacher, splits["test"], device, cfg, history)
    elif teacher is not None:  # the reused teacher of a student-only run, scored with its own history
        results["teacher"] = _scored(teacher, splits["test"], device, cfg, teacher_folder.history("teacher"))

    if stage in ("student", "both"):
        student, history = train_student(cfg, train_2d, teacher, folder, resume, progress, validate, device)
        folder.save_model("student", student, cfg)
        folder.save_history("student", history)
        results["student"] = _scored(student, splits["test"], device, cfg, history)
    results["seconds"] = time.time() - t0
    results["device"] = str(device)
    folder.write_metrics(results)
    return results


def _scored(model, test_set, device, cfg: Config, history) -> dict:
    """Test metrics of a trained model, with which checkpoint was kept (from its history) when known."""
    out = evaluate_model(model, test_set, device, teacher_output=cfg.teacher_output)
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


def _meta(splits) -> dict:
    return {name: {"frames": len(ps), "name": ps.name} for name, ps in splits.items()}

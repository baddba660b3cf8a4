"""Two-stage training (paper Sec. 3.4): stage 1 the teacher (L_t = λREP·L_REP + λRIC·L_RIC), stage 2 the
student with the teacher frozen (L_s = λKD·L_KD + λREC·L_REC).

A run directory holds ``config.json``, ``teacher.pt`` / ``student.pt`` (final weights), per-epoch
checkpoints ``<stage>_last.pt`` (and ``<stage>_prev.pt``, the fallback when the latest is corrupt),
``history.json`` (losses per epoch), ``metrics.json`` and ``run_info.json`` (seed, versions, device).
Each epoch draws its shuffling and cycle rotations from a generator seeded by (seed, stage, epoch), so a
run resumed after a crash gives the same numbers as one that never stopped.
"""
from __future__ import annotations

import contextlib
import json
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import __version__
from .config import Config
from .io import atomic_torch_save, atomic_write_json
from .losses import (canonicalisation_loss, knowledge_distillation_loss, reprojection_loss,
                     rotation_equivariance_loss, rotation_invariance_loss)
from .models import build_student, build_teacher, count_parameters

STAGE_SEED_OFFSET = {"teacher": 1, "student": 2}
# Config fields that decide the networks' architecture (a checkpoint only fits a model built with the same).
TEACHER_MODEL_FIELDS = ("variant", "teacher", "teacher_trunk", "num_atoms", "teacher_hidden", "teacher_bottleneck",
                        "teacher_blocks", "dictionary_bias", "extra_bottleneck")
MODEL_FIELDS = TEACHER_MODEL_FIELDS + ("student", "graph", "student_channels", "student_blocks")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or does not match the configuration."""


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' -> CUDA when present, else CPU. Asking for CUDA on a machine without it is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r}: CUDA was requested but torch.cuda.is_available() is False on this "
                           "machine; use --device cpu or --device auto.")
    if name != "cpu" and not name.startswith("cuda"):
        raise ValueError(f"device: expected auto, cpu, cuda or cuda:N, got {name!r}")
    return torch.device(name)


def epoch_generator(seed: int, stage: str, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 100_003 + STAGE_SEED_OFFSET[stage] * 10_007 + epoch)


def _batches(n: int, batch_size: int, generator: torch.Generator):
    order = torch.randperm(n, generator=generator)
    for start in range(0, n - batch_size + 1 if n >= batch_size else 1, batch_size):
        yield order[start:start + batch_size]


def make_optimizer(cfg: Config, model, stage: str = "teacher"):
    """The stage's optimiser (``cfg.optimizer``; stage 2 uses ``cfg.student_optimizer`` unless "same")."""
    name = cfg.optimizer if stage == "teacher" or cfg.student_optimizer == "same" else cfg.student_optimizer
    if name == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    step = cfg.lr_decay_every if cfg.lr_decay_every > 0 else 10 ** 9
    return opt, torch.optim.lr_scheduler.StepLR(opt, step_size=step, gamma=cfg.lr_decay)


def teacher_loss(cfg: Config, teacher, batch_2d, generator, epoch: int) -> dict:
    """L_t for one batch; returns the weighted total and each term (floats for logging)."""
    out = teacher(batch_2d)
    terms = {}
    if cfg.use_rep:
        terms["rep"] = (cfg.lambda_rep, reprojection_loss(out["pose_3d"], batch_2d, cfg.loss_norm))
    if cfg.use_ric and cfg.teacher == "dictionary":
        terms["ric"] = (cfg.lambda_ric, rotation_invariance_loss(
            teacher, out["canonical"], cfg.cycle_copies, cfg.ric_rotation, generator, cfg.loss_norm,
            root_align=epoch < cfg.root_align_epochs))
    if cfg.teacher == "c3dpo":
        terms["canon"] = (cfg.lambda_canon, canonicalisation_loss(
            teacher, out["canonical"], cfg.cycle_copies, cfg.ric_rotation, generator, cfg.loss_norm))
    return _weighted(terms)


def student_loss(cfg: Config, student, batch_2d, teacher_depth, generator) -> dict:
    """L_s for one batch; ``teacher_depth`` is (R̂ Ŷt)_z of the frozen teacher (or None without KD)."""
    out = student(batch_2d)
    terms = {}
    if cfg.use_kd:
        terms["kd"] = (cfg.lambda_kd, knowledge_distillation_loss(out["depth"], teacher_depth, cfg.kd_norm))
    if cfg.use_rec:
        terms["rec"] = (cfg.lambda_rec, rotation_equivariance_loss(
            student, out["pose_3d"], cfg.cycle_copies, cfg.rec_rotation, generator, cfg.loss_norm))
    return _weighted(terms)


def _weighted(terms: dict) -> dict:
    if not terms:
        raise ValueError("config: every loss of this stage is switched off; expected at least one of "
                         "use_rep/use_ric (teacher) or use_kd/use_rec (student).")
    total = sum(w * v for w, v in terms.values())
    return {"total": total, **{k: float(v.detach()) for k, (_, v) in terms.items()}}


@torch.no_grad()
def predict(model, keypoints_2d: np.ndarray, device, batch_size: int = 1024) -> dict:
    """Run a teacher or student in eval mode over (N, 17, 2) model-space 2D; numpy outputs."""
    keypoints_2d = check_keypoints_2d(keypoints_2d, "predict: keypoints_2d")
    model.eval()
    outs = []
    for start in range(0, len(keypoints_2d), batch_size):
        x = torch.as_tensor(keypoints_2d[start:start + batch_size], dtype=torch.float32, device=device)
        outs.append({k: v.cpu().numpy() for k, v in model(x).items()})
    out = {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}
    bad = ~np.isfinite(out["pose_3d"]).all(axis=(-1, -2))
    if bad.any():
        raise ValueError(f"predict: the model gave NaN/inf 3D poses for {int(bad.sum())} of {len(bad)} inputs "
                         f"(first at index {int(np.argmax(bad))}, largest |2D| value there "
                         f"{float(np.abs(keypoints_2d[int(np.argmax(bad))]).max()):.3g}); expected model-space 2D "
                         "inputs (root-centred, normalised so the pelvis-to-head length is about 0.2).")
    return out


def check_keypoints_2d(keypoints_2d, where: str, min_poses: int = 1) -> np.ndarray:
    """Model-space 2D inputs must be a finite (N, 17, 2) array with N >= ``min_poses``; returns it as float32."""
    from .skeleton import NUM_JOINTS
    a = np.asarray(keypoints_2d.detach().cpu() if isinstance(keypoints_2d, torch.Tensor) else keypoints_2d)
    if a.ndim != 3 or a.shape[1:] != (NUM_JOINTS, 2):
        raise ValueError(f"{where}: expected shape (N, {NUM_JOINTS}, 2) (N poses of the 17 H36M joints, 2D), "
                         f"got {a.shape}")
    if not np.issubdtype(a.dtype, np.number):
        raise ValueError(f"{where}: expected numbers, got dtype {a.dtype}")
    if len(a) < min_poses:
        raise ValueError(f"{where}: got {len(a)} poses; expected at least {min_poses}"
                         + (" (batch norm needs two poses per training batch)" if min_poses > 1 else ""))
    bad = ~np.isfinite(a)
    if bad.any():
        raise ValueError(f"{where}: contains {int(bad.sum())} NaN/inf values (first at index "
                         f"{np.argwhere(bad)[0].tolist()}); expected finite numbers")
    return a.astype(np.float32, copy=False)


def teacher_depth_labels(teacher, keypoints_2d, device, batch_size=1024) -> np.ndarray:
    """L_KD targets: the frozen teacher's depth (R̂ Ŷt)_z of every training sample, computed once, (N, 17)."""
    return predict(teacher, keypoints_2d, device, batch_size)["pose_3d"][..., 2]


def _save_epoch(run_dir: Path, stage: str, state: dict):
    last, prev = run_dir / f"{stage}_last.pt", run_dir / f"{stage}_prev.pt"
    atomic_torch_save(last, state, backup=prev)  # the old _last becomes _prev only once the new one is on disk


def load_checkpoint_file(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # corrupt / truncated / not a torch file
        raise CheckpointError(f"checkpoint {path}: cannot be read ({type(exc).__name__}: {exc}); "
                              "expected a file written by itespy.train.") from None
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise CheckpointError(f"checkpoint {path}: expected an itespy checkpoint with 'model' and 'config' keys.")
    return state


def _latest_epoch_state(run_dir: Path, stage: str):
    """(path, state) of the newest readable epoch checkpoint of ``stage`` (``_last``, else ``_prev``), or None."""
    names = (f"{stage}_last.pt", f"{stage}_prev.pt")
    for i, name in enumerate(names):
        path = run_dir / name
        if path.exists():
            try:
                return path, load_checkpoint_file(path)
            except CheckpointError as exc:
                fallback = ("Falling back to the previous checkpoint." if i + 1 < len(names) and
                            (run_dir / names[i + 1]).exists() else
                            f"No earlier checkpoint is readable: training {stage} from epoch 1.")
                warnings.warn(f"{exc} {fallback}", stacklevel=2)
    return None


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """Run the block with ``threads`` torch CPU threads (restored afterwards). A training's thread count is
    part of its configuration (``Config.threads``): another count changes the order of floating-point sums,
    and a short training amplifies that, so it must not depend on the machine or on ``--jobs``."""
    if not threads:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _fit(cfg, stage, model, data_2d, labels, run_dir, device, epochs, resume, progress, validate=None):
    """Shared epoch loop of both stages; returns the list of per-epoch history records.

    ``validate(model) -> {"mpjpe": ..., ...}`` (optional) scores the model on a validation split drawn from
    the training clips every ``cfg.val_every`` steps (0: after every epoch); the checks go into the epoch
    records (``validation``), and with ``cfg.checkpoint == "best_val"`` the model returned is the checked
    state with the lowest validation MPJPE (the last record's ``kept`` says which)."""
    data_2d = check_keypoints_2d(data_2d, f"{stage} training data", min_poses=2)
    opt, sched = make_optimizer(cfg, model, stage)
    history, start, best, step = [], 0, None, 0
    if resume and run_dir is not None:
        found = _latest_epoch_state(run_dir, stage)
        if found is not None:
            path, state = found
            _check_config_match(state, cfg, path)
            try:
                model.load_state_dict(state["model"])
                opt.load_state_dict(state["optimizer"])
                sched.load_state_dict(state["scheduler"])
                history, start = state["history"], state["epoch"] + 1
                best, step = state.get("best"), state.get("step", 0)
            except (RuntimeError, ValueError, KeyError) as exc:
                raise CheckpointError(f"checkpoint {path}: cannot resume from it ({str(exc).splitlines()[0]}); "
                                      f"expected an epoch checkpoint of this {stage}'s configuration.") from None
    x_all = torch.as_tensor(data_2d, dtype=torch.float32)
    y_all = None if labels is None else torch.as_tensor(labels, dtype=torch.float32)

    def check(epoch, checks):
        nonlocal best
        result = {"step": step, "epoch": epoch + 1, **validate(model)}
        model.train()
        checks.append(result)
        if best is None or result["mpjpe"] < best["mpjpe"]:
            best = {"step": step, "epoch": epoch + 1, "mpjpe": result["mpjpe"],
                    "model": {k: v.detach().clone() for k, v in model.state_dict().items()}}

    for epoch in range(start, epochs):
        model.train()
        gen = epoch_generator(cfg.seed, stage, epoch)
        sums, count, t0, checks = {}, 0, time.perf_counter(), []
        batches = list(_batches(len(x_all), cfg.batch_size, gen))
        for idx in tqdm(batches, desc=f"{stage} epoch {epoch + 1}/{epochs}", disable=not progress, leave=False):
            x = x_all[idx].to(device)
            if stage == "teacher":
                losses = teacher_loss(cfg, model, x, gen, epoch)
            else:
                y = None if y_all is None else y_all[idx].to(device)
                losses = student_loss(cfg, model, x, y, gen)
            opt.zero_grad(set_to_none=True)
            losses["total"].backward()
            opt.step()
            losses["total"] = float(losses["total"].detach())
            if not np.isfinite(losses["total"]):
                raise FloatingPointError(f"{stage} epoch {epoch + 1}: the loss became {losses['total']}; "
                                         f"try a smaller learning rate than {cfg.lr}.")
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1
            step += 1
            if validate is not None and cfg.val_every and step % cfg.val_every == 0:
                check(epoch, checks)
        sched.step()
        # with val_every, also check once at the very end; without it, at the end of every epoch
        if validate is not None and (not cfg.val_every or epoch == epochs - 1) and (
                not checks or checks[-1]["step"] != step):
            check(epoch, checks)
        record = {"stage": stage, "epoch": epoch + 1, "seconds": time.perf_counter() - t0, "steps": count,
                  **{f"loss_{k}": v / max(count, 1) for k, v in sums.items()}}
        if checks:
            record["validation"] = checks
        history.append(record)
        if run_dir is not None:
            _save_epoch(run_dir, stage, {"epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
                                         "scheduler": sched.state_dict(), "history": history, "best": best,
                                         "step": step, "config": cfg.to_dict()})
    if history and best is not None:
        kept = "last"
        if cfg.checkpoint == "best_val":
            model.load_state_dict(best["model"])
            kept = "best_val"
        history[-1]["kept"] = {"rule": kept, "best_step": best["step"], "best_epoch": best["epoch"],
                               "best_val_mpjpe": best["mpjpe"], "steps": step}
    return history


def _check_config_match(state, cfg, path, fields=MODEL_FIELDS, expected_from="requested"):
    saved = state["config"]
    diff = {k: (saved.get(k), getattr(cfg, k)) for k in fields if saved.get(k) != getattr(cfg, k)}
    if diff:
        listed = ", ".join(f"{k}: saved {a!r}, {expected_from} {b!r}" for k, (a, b) in diff.items())
        raise CheckpointError(f"checkpoint {path}: it was trained with a different model ({listed}).")


def train_teacher(cfg: Config, train_2d: np.ndarray, run_dir=None, resume=False, progress=True, validate=None):
    """Stage 1. Returns (teacher in eval mode, history). ``validate``: see :func:`_fit`."""
    device = resolve_device(cfg.device)
    with torch_threads(cfg.threads):
        torch.manual_seed(cfg.seed)
        teacher = build_teacher(cfg).to(device)
        history = _fit(cfg, "teacher", teacher, train_2d, None, run_dir, device, cfg.teacher_epochs, resume,
                       progress, validate)
    return teacher.eval(), history


def train_student(cfg: Config, train_2d: np.ndarray, teacher=None, run_dir=None, resume=False, progress=True,
                  validate=None):
    """Stage 2 with the teacher frozen (needed only when L_KD is on). Returns (student, history)."""
    device = resolve_device(cfg.device)
    labels = None
    with torch_threads(cfg.threads):
        if cfg.use_kd:
            if teacher is None:
                raise ValueError("train_student: L_KD is on (use_kd=True) but no trained teacher was given.")
            for p in teacher.parameters():
                p.requires_grad_(False)
            labels = teacher_depth_labels(teacher.to(device), train_2d, device, cfg.eval_batch_size)
        torch.manual_seed(cfg.seed + STAGE_SEED_OFFSET["student"])
        student = build_student(cfg).to(device)
        history = _fit(cfg, "student", student, train_2d, labels, run_dir, device, cfg.student_epochs, resume,
                       progress, validate)
    return student.eval(), history


def save_model(path, model, cfg: Config, stage: str, extra: dict | None = None):
    atomic_torch_save(path, {"model": model.state_dict(), "config": cfg.to_dict(), "stage": stage,
                             "itespy_version": __version__, **(extra or {})})


def load_model(path, stage: str, device="cpu", expected: Config | None = None, fields=None,
               expected_from: str = "requested"):
    """Load ``teacher.pt`` / ``student.pt``; returns (model in eval mode, Config).

    ``expected``: the configuration the checkpoint must have been trained with (e.g. the run directory's
    config.json, named by ``expected_from`` in the error); a difference in the architecture ``fields``
    (default: every model field) is a CheckpointError."""
    if stage not in STAGE_SEED_OFFSET:
        raise ValueError(f"load_model: stage expected 'teacher' or 'student', got {stage!r}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path}: file not found; expected the output of `itespy train`.")
    state = load_checkpoint_file(path)
    if state.get("stage", stage) != stage:
        raise CheckpointError(f"checkpoint {path}: it holds a {state['stage']}, expected a {stage}.")
    try:
        cfg = Config.from_dict(state["config"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path}: its configuration cannot be used ({exc}).") from None
    if expected is not None:
        _check_config_match(state, expected, path, fields or MODEL_FIELDS, expected_from)
    model = build_teacher(cfg) if stage == "teacher" else build_student(cfg)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path}: weights do not fit a {stage} built from its own config "
                              f"({str(exc).splitlines()[0]}).") from None
    return model.to(resolve_device(device) if isinstance(device, str) else device).eval(), cfg


def run_info(cfg: Config, device) -> dict:
    return {"seed": cfg.seed, "device": str(device), "itespy": __version__, "torch": torch.__version__,
            "numpy": np.__version__, "python": platform.python_version(), "profile": cfg.profile,
            "config": cfg.to_dict()}

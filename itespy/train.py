"""Two-stage training (paper Sec. 3.4): stage 1 the teacher (L_t = λREP·L_REP + λRIC·L_RIC, plus the kit's
handedness prior λ_hand·L_hand when ``lambda_hand`` > 0, not in the paper), stage 2 the student with the teacher frozen (L_s = λKD·L_KD + λREC·L_REC).

The fit loop keeps its per-epoch states in a run folder (:class:`itespy.runfolder.RunFolder`, which owns the
folder's layout) and resumes from them; it returns its history, which the caller saves. Each epoch draws
its shuffling and cycle rotations from a generator seeded by (seed, stage, epoch), so a run resumed after a crash gives the same numbers as one that never stopped.
"""
from __future__ import annotations

import time

import numpy as np
import torch
from tqdm.auto import tqdm

from .checkpoints import CheckpointError, check_config_match
from .config import Config
from .devices import resolve_device, torch_threads
from .inference import check_keypoints_2d, teacher_depth_labels
from .losses import (canonicalisation_loss, handedness_loss, knowledge_distillation_loss, reprojection_loss,
                     rotation_equivariance_loss, rotation_invariance_loss)
from .models import build_student, build_teacher
from .runfolder import RunFolder

STAGE_SEED_OFFSET = {"teacher": 1, "student": 2}


def epoch_generator(seed: int, stage: str, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 100_003 + STAGE_SEED_OFFSET[stage] * 10_007 + epoch)


def _batches(n: int, batch_size: int, generator: torch.Generator):
    order = torch.randperm(n, generator=generator)
    for start in range(0, n - batch_size + 1 if n >= batch_size else 1, batch_size):
        yield order[start:start + batch_size]


def make_optimizer(cfg: Config, model, stage: str = "teacher"):
    """The stage's optimiser (``cfg.optimizer``; stage 2 uses ``cfg.student_optimizer`` unless "same") and its
    step decay (every ``cfg.lr_decay_every`` epochs; stage 2 every ``cfg.student_lr_decay_every`` if set); stage 2's
    learning rate and weight decay are ``cfg.student_lr`` and ``cfg.student_weight_decay`` if set, else ``cfg.lr``
    and ``cfg.weight_decay``."""
    name = cfg.optimizer if stage == "teacher" or cfg.student_optimizer == "same" else cfg.student_optimizer
    lr, decay = cfg.lr, cfg.weight_decay
    if stage == "student" and cfg.student_lr is not None:
        lr = cfg.student_lr
    if stage == "student" and cfg.student_weight_decay is not None:
        decay = cfg.student_weight_decay
    if name == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=decay)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=cfg.momentum, weight_decay=decay)
    every = cfg.lr_decay_every
    if stage == "student" and cfg.student_lr_decay_every is not None:
        every = cfg.student_lr_decay_every
    step = every if every > 0 else 10 ** 9
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
            root_align=epoch < cfg.root_align_epochs, view=out["rotation"]))
    if cfg.teacher == "c3dpo":
        terms["canon"] = (cfg.lambda_canon, canonicalisation_loss(
            teacher, out["canonical"], cfg.cycle_copies, cfg.ric_rotation, generator, cfg.loss_norm,
            view=out["rotation"]))
    if cfg.lambda_hand > 0:
        terms["hand"] = (cfg.lambda_hand, handedness_loss(out["pose_3d"], out["lifted_3d"]))
    return _weighted(terms)


def student_loss(cfg: Config, student, batch_2d, teacher_depth, generator) -> dict:
    """L_s for one batch; ``teacher_depth`` is (R̂ Ŷt)_z of the frozen teacher (or None without KD)."""
    out = student(batch_2d)
    terms = {}
    if cfg.use_kd:
        terms["kd"] = (cfg.lambda_kd, knowledge_distillation_loss(out["depth"], teacher_depth, cfg.kd_norm))
    if cfg.use_rec:
        copies = cfg.cycle_copies if cfg.rec_copies is None else cfg.rec_copies
        terms["rec"] = (cfg.lambda_rec, rotation_equivariance_loss(
            student, out["pose_3d"], copies, cfg.rec_rotation, generator, cfg.loss_norm))
    return _weighted(terms)


def _weighted(terms: dict) -> dict:
    if not terms:
        raise ValueError("config: every loss of this stage is switched off; expected at least one of "
                         "use_rep/use_ric (teacher) or use_kd/use_rec (student).")
    total = sum(w * v for w, v in terms.values())
    return {"total": total, **{k: float(v.detach()) for k, (_, v) in terms.items()}}


def _fit(cfg, stage, model, data_2d, labels, folder, device, epochs, resume, progress, validate=None):
    """Shared epoch loop of both stages; returns the list of per-epoch history records. ``folder`` (a
    RunFolder or None) keeps a state after every epoch and, with ``resume``, gives the one to continue from.

    ``validate(model) -> {"mpjpe": ..., ...}`` (optional) scores the model on a validation split drawn from
    the training clips every ``cfg.val_every`` steps (0: after every epoch); the checks go into the epoch
    records (``validation``), and with ``cfg.checkpoint == "best_val"`` the model returned is the checked
    state with the lowest validation MPJPE (the last record's ``kept`` says which)."""
    data_2d = check_keypoints_2d(data_2d, f"{stage} training data", min_poses=2)
    opt, sched = make_optimizer(cfg, model, stage)
    history, start, best, step = [], 0, None, 0
    if resume and folder is not None:
        found = folder.latest_epoch_state(stage)
        if found is not None:
            path, state = found
            check_config_match(state, cfg, path)
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
        if folder is not None:
            folder.save_epoch_state(stage, {"epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
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


def _folder(run_dir):
    return None if run_dir is None else RunFolder(run_dir)


def train_teacher(cfg: Config, train_2d: np.ndarray, run_dir=None, resume=False, progress=True, validate=None,
                  device=None):
    """Stage 1. Returns (teacher in eval mode, history). ``validate``: see :func:`_fit`. ``device``: the torch
    device the caller settled (with ``cfg.threads`` threads, as :func:`itespy.run.run_experiment` does); None
    makes this call the entry point, which settles both itself."""
    if device is None:
        with torch_threads(cfg.threads):
            return train_teacher(cfg, train_2d, run_dir, resume, progress, validate, resolve_device(cfg.device))
    torch.manual_seed(cfg.seed)
    teacher = build_teacher(cfg).to(device)
    history = _fit(cfg, "teacher", teacher, train_2d, None, _folder(run_dir), device, cfg.teacher_epochs, resume,
                   progress, validate)
    return teacher.eval(), history


def train_student(cfg: Config, train_2d: np.ndarray, teacher=None, run_dir=None, resume=False, progress=True,
                  validate=None, device=None):
    """Stage 2 with the teacher frozen (needed only when L_KD is on). Returns (student, history). ``device``:
    as in :func:`train_teacher`."""
    if device is None:
        with torch_threads(cfg.threads):
            return train_student(cfg, train_2d, teacher, run_dir, resume, progress, validate,
                                 resolve_device(cfg.device))
    labels = None
    if cfg.use_kd:
        if teacher is None:
            raise ValueError("train_student: L_KD is on (use_kd=True) but no trained teacher was given.")
        for p in teacher.parameters():
            p.requires_grad_(False)
        labels = teacher_depth_labels(teacher.to(device), train_2d, device, cfg.eval_batch_size, cfg.kd_target)
    torch.manual_seed(cfg.seed + STAGE_SEED_OFFSET["student"])
    student = build_student(cfg).to(device)
    history = _fit(cfg, "student", student, train_2d, labels, _folder(run_dir), device, cfg.student_epochs, resume,
                   progress, validate)
    return student.eval(), history



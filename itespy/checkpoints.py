"""Checkpoints: the file format of a model's weights (final ``teacher.pt`` / ``student.pt`` and the per-epoch
states that :class:`itespy.runfolder.RunFolder` keeps), each with the configuration it was trained with;
loading checks that configuration against the one expected."""
from __future__ import annotations

from pathlib import Path

import torch

from . import __version__
from .config import Config
from .devices import resolve_device
from .io import atomic_torch_save
from .models import build_student, build_teacher

STAGE_NAMES = ("teacher", "student")
# Config fields that decide the networks' architecture (a checkpoint only fits a model built with the same).
TEACHER_MODEL_FIELDS = ("variant", "teacher", "teacher_trunk", "num_atoms", "teacher_hidden", "teacher_bottleneck",
                        "teacher_blocks", "dictionary_bias", "extra_bottleneck")
MODEL_FIELDS = TEACHER_MODEL_FIELDS + ("student", "graph", "student_channels", "student_blocks")


# Shipped (pretrained) checkpoints store their large weight matrices as int8 with one float32 scale per row
# (symmetric: w ~ q * scale, |q| <= 127); every other tensor is kept as it is. Loading restores float32.
INT8_ROWS = "int8-rows"
INT8_LEVELS = 127
INT8_MIN_ELEMENTS = 4096  # smaller tensors (biases, norms, graph masks of few joints) stay float32


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or does not match the configuration."""


def compress_state_dict(state_dict: dict) -> dict:
    """int8 per-row copies of the float matrices with at least INT8_MIN_ELEMENTS entries (about 4x smaller)."""
    out = {}
    for name, t in state_dict.items():
        if t.is_floating_point() and t.dim() >= 2 and t.numel() >= INT8_MIN_ELEMENTS:
            rows = t.detach().float().reshape(t.shape[0], -1)
            scale = rows.abs().amax(dim=1).clamp_min(torch.finfo(torch.float32).tiny) / INT8_LEVELS
            q = torch.round(rows / scale[:, None]).clamp(-INT8_LEVELS, INT8_LEVELS).to(torch.int8)
            out[name] = {"q": q.reshape(t.shape), "scale": scale}
        else:
            out[name] = t.detach().clone()
    return out


def decompress_state_dict(state_dict: dict) -> dict:
    """The float32 state dict of :func:`compress_state_dict`'s output."""
    return {name: (v["q"].float() * v["scale"].reshape(-1, *([1] * (v["q"].dim() - 1))) if isinstance(v, dict)
                   else v) for name, v in state_dict.items()}


def load_checkpoint_file(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # corrupt / truncated / not a torch file
        raise CheckpointError(f"checkpoint {path}: cannot be read ({type(exc).__name__}: {exc}); "
                              "expected a file written by itespy.train.") from None
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise CheckpointError(f"checkpoint {path}: expected an itespy checkpoint with 'model' and 'config' keys.")
    return state


def check_config_match(state, cfg, path, fields=MODEL_FIELDS, expected_from="requested"):
    saved = state["config"]
    diff = {k: (saved.get(k), getattr(cfg, k)) for k in fields if saved.get(k) != getattr(cfg, k)}
    if diff:
        listed = ", ".join(f"{k}: saved {a!r}, {expected_from} {b!r}" for k, (a, b) in diff.items())
        raise CheckpointError(f"checkpoint {path}: it was trained with a different model ({listed}).")


# Before 2026-12-06 the AGCN teacher trunk was always 64 channels x 8 blocks, whatever teacher_hidden and
# teacher_blocks said; checkpoints written since carry AGCN_SIZED_KEY, and older ones are rebuilt at that size.
AGCN_SIZED_KEY = "agcn_trunk_sized_by_config"
LEGACY_AGCN_TRUNK = {"teacher_hidden": 64, "teacher_blocks": 8}


def save_model(path, model, cfg: Config, stage: str, extra: dict | None = None):
    atomic_torch_save(path, {"model": model.state_dict(), "config": cfg.to_dict(), "stage": stage,
                             "itespy_version": __version__, AGCN_SIZED_KEY: True, **(extra or {})})


def _architecture_config(state, cfg: Config, stage: str) -> Config:
    """The config to build the checkpoint's network from (an old AGCN-trunk teacher: its fixed size)."""
    if stage == "teacher" and cfg.teacher_trunk == "agcn" and not state.get(AGCN_SIZED_KEY):
        return cfg.replace(**LEGACY_AGCN_TRUNK)
    return cfg


def load_model(path, stage: str, device="cpu", expected: Config | None = None, fields=None,
               expected_from: str = "requested"):
    """Load ``teacher.pt`` / ``student.pt``; returns (model in eval mode, Config).

    ``expected``: the configuration the checkpoint must have been trained with (e.g. the run directory's
    config.json, named by ``expected_from`` in the error); a difference in the architecture ``fields``
    (default: every model field) is a CheckpointError."""
    if stage not in STAGE_NAMES:
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
        check_config_match(state, expected, path, fields or MODEL_FIELDS, expected_from)
    arch = _architecture_config(state, cfg, stage)
    model = build_teacher(arch) if stage == "teacher" else build_student(arch)
    weights = state["model"]
    if state.get("weights_format") == INT8_ROWS:
        try:
            weights = decompress_state_dict(weights)
        except (KeyError, TypeError, AttributeError, RuntimeError) as exc:
            raise CheckpointError(f"checkpoint {path}: its int8 weights cannot be restored ({exc}).") from None
    elif state.get("weights_format") not in (None, "float"):
        raise CheckpointError(f"checkpoint {path}: unknown weights_format {state['weights_format']!r}; expected "
                              f"'float' or {INT8_ROWS!r} (a newer itespy wrote it?).")
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path}: weights do not fit a {stage} built from its own config "
                              f"({str(exc).splitlines()[0]}).") from None
    return model.to(resolve_device(device) if isinstance(device, str) else device).eval(), cfg

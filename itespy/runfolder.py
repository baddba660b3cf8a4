"""A run directory, owned in one place: its layout, its identity rule, and reading and writing what is in it.

One run of ``python -m itespy train`` (or a notebook's ``run_experiment``) writes one folder::

    config.json            the Config the run was trained with (its identity: :meth:`RunFolder.holds`)
    run_info.json          seed, versions, device, stage, data sizes (:func:`itespy.devices.run_info`)
    normalisation.json     how the 2D inputs were made from pixels, and the training split's 3D scale
    teacher.pt, student.pt the final weights (:mod:`itespy.checkpoints` is their format)
    <stage>_last.pt        the newest per-epoch state (model, optimiser, history), for resuming a cut run;
    <stage>_prev.pt        the one before, the fallback when the newest is corrupt
    history_<stage>.json   one record per epoch: mean losses, validation checks, the kept checkpoint
    metrics.json           the test metrics of each trained stage

Two runs are "the same" when their configurations agree on every field but :data:`itespy.config.RUN_FIELDS`
(and, for a teacher-only folder, the student's fields): the same rule as the folder's key
(:func:`itespy.config.config_key`), so a keyed folder and its contents never disagree."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from .checkpoints import CheckpointError, load_checkpoint_file, load_model, save_model
from .config import RUN_FIELDS, STUDENT_FIELDS, Config, config_key
from .io import atomic_torch_save, atomic_write_json, read_json

CONFIG_FILE = "config.json"
RUN_INFO_FILE = "run_info.json"
NORMALISATION_FILE = "normalisation.json"
METRICS_FILE = "metrics.json"
STAGE_FILES = ("teacher", "student")
HISTORY_FILE = "history_{stage}.json"


class RunDirectoryError(RuntimeError):
    """The output directory holds results of another run."""


def keyed_run_dir(base, cfg: Config, stage: str = "both") -> Path:
    """``base/<teacher|run>-<key>``: one run folder per configuration (:func:`itespy.config.config_key`), so a
    notebook re-run with other settings trains into a new folder instead of refusing the old one; a teacher's
    folder is keyed by the teacher's settings only, so every student configuration finds it."""
    prefix = "teacher" if stage == "teacher" else "run"
    return Path(base) / f"{prefix}-{config_key(cfg, stage)}"


def ignored_fields(stage: str = "both") -> set:
    """Fields that do not tell two runs of ``stage`` apart: :data:`RUN_FIELDS` (as :func:`config_key` ignores
    them), plus the student's fields for a teacher-only folder (a teacher serves every student)."""
    return set(RUN_FIELDS) | (set(STUDENT_FIELDS) if stage == "teacher" else set())


def changed_fields(saved: dict, cfg: Config, stage: str = "both") -> list:
    """The fields, sorted, in which a folder's saved configuration and ``cfg`` differ for a run of ``stage``."""
    new, ignored = cfg.to_dict(), ignored_fields(stage)
    return sorted(k for k in set(saved) | set(new) if k not in ignored and saved.get(k) != new.get(k))


@dataclass(frozen=True)
class RunFolder:
    """One run directory (it need not exist yet)."""
    path: Path

    def __init__(self, path):
        object.__setattr__(self, "path", path.path if isinstance(path, RunFolder) else Path(path))

    # ------------------------------------------------------------------------------------------ layout
    def model_file(self, stage: str) -> Path:
        return self.path / f"{stage}.pt"

    def history_file(self, stage: str) -> Path:
        return self.path / HISTORY_FILE.format(stage=stage)

    def epoch_files(self, stage: str) -> tuple:
        """(newest, previous) per-epoch states of ``stage``."""
        return self.path / f"{stage}_last.pt", self.path / f"{stage}_prev.pt"

    # ------------------------------------------------------------------------------------------ identity
    def saved_config(self) -> dict | None:
        """config.json as a dict, or None when the folder holds no run yet."""
        path = self.path / CONFIG_FILE
        return read_json(path) if path.exists() else None

    def config(self) -> Config | None:
        """config.json as a Config (None without one); a file that holds no itespy configuration is an error."""
        saved = self.saved_config()
        if saved is None:
            return None
        try:
            return Config.from_dict(saved)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"run directory {self.path}: its {CONFIG_FILE} does not hold an itespy configuration "
                             f"({exc}).") from None

    def holds(self, cfg: Config, stage: str = "both") -> bool:
        """Whether the folder's run is ``cfg``'s (the identity rule of the module docstring)."""
        saved = self.saved_config()
        return saved is not None and not changed_fields(saved, cfg, stage)

    def prepare(self, cfg: Config, resume: bool, overwrite: bool, stage: str = "both"):
        """Make the folder ready to train ``cfg`` into: refuse a folder of another run (or any run without
        ``resume``/``overwrite``), drop temp files of writes cut short by a crash, write config.json."""
        if self.path.exists() and not self.path.is_dir():
            raise RunDirectoryError(f"output directory {self.path}: it exists and is a file; expected a folder (or "
                                    "a path that does not exist yet).")
        saved = self.saved_config()
        if saved is not None and not overwrite:
            if not resume:
                raise RunDirectoryError(
                    f"output directory {self.path}: it already holds a run ({CONFIG_FILE}). Pass --resume to "
                    "continue or reuse it, --overwrite to replace it, or choose another --out; earlier results "
                    "are never silently replaced.")
            changed = changed_fields(saved, cfg, stage)
            if changed:
                raise RunDirectoryError(f"output directory {self.path}: --resume with a different configuration "
                                        f"(fields {changed}); use another --out.")
        self.path.mkdir(parents=True, exist_ok=True)
        for stale in self.path.glob(".*.tmp"):
            stale.unlink(missing_ok=True)
        atomic_write_json(self.path / CONFIG_FILE, cfg.to_dict())

    # ------------------------------------------------------------------------------------------ contents
    def stored_metrics(self, cfg: Config, stage: str = "both") -> dict | None:
        """metrics.json when it holds every stage of a finished ``stage`` run of ``cfg``, else None."""
        path = self.path / METRICS_FILE
        if not path.exists() or not self.holds(cfg, stage):
            return None
        stored = read_json(path)
        wanted = {"teacher": ("teacher",), "student": ("student",), "both": STAGE_FILES}[stage]
        return stored if all(k in stored for k in wanted) else None

    def write_metrics(self, metrics: dict):
        atomic_write_json(self.path / METRICS_FILE, metrics)

    def write_run_info(self, info: dict):
        atomic_write_json(self.path / RUN_INFO_FILE, info)

    def write_normalisation(self, record: dict):
        atomic_write_json(self.path / NORMALISATION_FILE, record)

    def normalisation(self) -> dict:
        """normalisation.json ({} for a folder written before it existed)."""
        path = self.path / NORMALISATION_FILE
        return read_json(path) if path.exists() else {}

    def training_scale(self) -> float | None:
        """The training split's 3D scale (what a test set from another source is normalised with), if recorded."""
        return self.normalisation().get("scale")

    def save_history(self, stage: str, history: list):
        atomic_write_json(self.history_file(stage), history)

    def history(self, stage: str) -> list | None:
        path = self.history_file(stage)
        return read_json(path) if path.exists() else None

    # ------------------------------------------------------------------------------------------ weights
    def has_model(self, stage: str) -> bool:
        return self.model_file(stage).is_file()

    def save_model(self, stage: str, model, cfg: Config):
        save_model(self.model_file(stage), model, cfg, stage)

    def load_model(self, stage: str, device="cpu", expected: Config | None = None, fields=None,
                   expected_from: str = "requested"):
        """(model in eval mode, its Config) from ``<stage>.pt``; see :func:`itespy.checkpoints.load_model`."""
        return load_model(self.model_file(stage), stage, device, expected, fields, expected_from)

    def load_models(self, device="cpu") -> tuple:
        """({stage: model} of every final model in the folder, the Config they were trained with), each
        checked against config.json when the folder has one."""
        if not self.path.is_dir():
            raise FileNotFoundError(f"run directory {self.path}: not found; expected a folder written by "
                                    "`itespy train` (with teacher.pt and/or student.pt).")
        expected = self.config()
        models, cfg = {}, expected
        for stage in STAGE_FILES:
            if self.has_model(stage):
                models[stage], cfg = self.load_model(stage, device, expected,
                                                     expected_from=f"{self.path / CONFIG_FILE} says")
        if not models:
            raise FileNotFoundError(f"run directory {self.path}: no teacher.pt or student.pt in it; expected a "
                                    "folder written by `itespy train`.")
        return models, cfg

    # ------------------------------------------------------------------------------------------ resuming
    def save_epoch_state(self, stage: str, state: dict):
        last, prev = self.epoch_files(stage)
        atomic_torch_save(last, state, backup=prev)  # the old _last becomes _prev only once the new one is on disk

    def latest_epoch_state(self, stage: str):
        """(path, state) of the newest readable per-epoch state of ``stage`` (``_last``, else ``_prev``), or None."""
        files = self.epoch_files(stage)
        for i, path in enumerate(files):
            if path.exists():
                try:
                    return path, load_checkpoint_file(path)
                except CheckpointError as exc:
                    fallback = ("Falling back to the previous checkpoint." if i + 1 < len(files) and
                                files[i + 1].exists() else
                                f"No earlier checkpoint is readable: training {stage} from epoch 1.")
                    warnings.warn(f"{exc} {fallback}", stacklevel=2)
        return None

"""Jobs: one training stage of one configuration, cached in ``CACHE/<stage>-<key>/`` where
``key = hash(config + code version)``; rows that share a configuration train it once."""
from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
from pathlib import Path

from .. import __version__
from ..config import Config, result_fields, teacher_config
from ..io import atomic_write_json, atomic_write_text, utc_now
from .locks import job_lock

# Sources that do not change what a trained model or a metric is (excluded from the code version): paths
# relative to the package, a folder excluding everything under it.
_CODE_EXCLUDE = ("experiments", "reproduce", "viz", "predict", "book", "cli.py", "__main__.py", "data/summary.py")


def stable_hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def code_version() -> str:
    """Hash of the itespy sources that define training and evaluation (plus the package version).

    The environment variable ``ITESPY_CODE_VERSION`` replaces it (e.g. to pin one version for every worker
    of a batch while the sources are being edited, or in tests); cache keys then ignore source changes."""
    return os.environ.get("ITESPY_CODE_VERSION") or source_hash()


@functools.lru_cache(maxsize=None)
def source_hash() -> str:
    h = hashlib.sha256(__version__.encode())
    root = Path(__file__).resolve().parents[1]
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if "__pycache__" in rel.parts or any(rel.as_posix() == x or rel.parts[0] == x for x in _CODE_EXCLUDE):
            continue
        h.update(str(rel).encode())
        h.update(_code_only(path.read_text(encoding="utf-8")).encode())
    return h.hexdigest()[:12]


def _code_only(source: str) -> str:
    """The module's syntax tree without comments and docstrings: editing prose does not change the version."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body \
                and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant) \
                and isinstance(node.body[0].value.value, str):
            node.body = node.body[1:] or [ast.Pass()]
    return ast.dump(tree, include_attributes=False)



def job_key(cfg: Config, teacher_key: str | None = None) -> str:
    return stable_hash({"config": result_fields(cfg), "code": code_version(), "teacher": teacher_key})



@functools.lru_cache(maxsize=8)
def _splits_cached(data: str, seed: int, max_train, max_test, stride: int):
    from ..data import load_splits
    return load_splits(data, seed=seed, max_train=max_train, max_test=max_test, stride=stride)


def load_row_splits(cfg: Config) -> dict:
    """{'train', 'test'} PoseSets of a configuration (cached in memory for the rows of one process)."""
    return _splits_cached(cfg.data, cfg.seed, cfg.max_train, cfg.max_test, cfg.stride)


def job_done(job_dir: Path, force_token: str) -> bool:
    if not (job_dir / "metrics.json").exists():
        return False
    return not force_token or _token(job_dir) == force_token


def _token(job_dir: Path) -> str:
    path = job_dir / "force_token"
    return path.read_text().strip() if path.exists() else ""


def _run_job(cfg: Config, job_dir: Path, stage: str, force_token: str, progress: bool, teacher_dir=None,
             log=None) -> dict:
    from ..run import run_experiment
    with job_lock(job_dir.parent / f"{job_dir.name}.lock", log=log):
        if job_done(job_dir, force_token):
            return json.loads((job_dir / "metrics.json").read_text())
        retrain = bool(force_token) and job_dir.exists() and _token(job_dir) != force_token
        if log:
            log(f"  training {job_dir.name} ({stage}){' [--force]' if retrain else ''}")
        metrics = run_experiment(cfg, job_dir, stage=stage, splits=load_row_splits(cfg), resume=not retrain,
                                 overwrite=retrain, progress=progress, teacher_dir=teacher_dir)
        if force_token:
            atomic_write_text(job_dir / "force_token", force_token)
        atomic_write_json(job_dir / "job.json", {"stage": stage, "key": job_dir.name.split("-", 1)[1],
                                                 "code_version": code_version(), "finished": utc_now(),
                                                 "teacher_dir": None if teacher_dir is None else str(teacher_dir)})
        return metrics


def teacher_job_name(cfg: Config) -> str:
    """The cache job (``CACHE/<name>/``) of the teacher ``cfg`` needs."""
    return f"teacher-{job_key(teacher_config(cfg))}"


def student_job_name(cfg: Config, teacher_job: str | None) -> str:
    """The cache job of the student of ``cfg`` distilled from ``teacher_job`` (None without L_KD)."""
    return f"student-{job_key(cfg, teacher_job)}"


def ensure_teacher(cfg: Config, cache_dir, force_token: str = "", progress: bool = False, log=None):
    """Train (or load) the teacher of ``cfg``. Returns (job dir, metrics.json)."""
    tcfg = teacher_config(cfg)
    job_dir = Path(cache_dir) / teacher_job_name(cfg)
    if job_done(job_dir, force_token):
        return job_dir, json.loads((job_dir / "metrics.json").read_text())
    return job_dir, _run_job(tcfg, job_dir, "teacher", force_token, progress, log=log)


def ensure_student(cfg: Config, cache_dir, force_token: str = "", progress: bool = False, log=None):
    """Train (or load) the student of ``cfg`` (and, with L_KD on, its teacher first). Returns (job dir, metrics)."""
    teacher_dir, tkey = None, None
    if cfg.use_kd:
        teacher_dir, _ = ensure_teacher(cfg, cache_dir, force_token, progress, log)
        tkey = teacher_dir.name
    job_dir = Path(cache_dir) / student_job_name(cfg, tkey)
    if job_done(job_dir, force_token):
        return job_dir, json.loads((job_dir / "metrics.json").read_text())
    return job_dir, _run_job(cfg, job_dir, "student", force_token, progress, teacher_dir=teacher_dir, log=log)



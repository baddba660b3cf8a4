"""Reproduce every table of the paper with one command: ``python -m itespy reproduce --profile smoke``.

Three layers, each usable alone:

* **jobs** -- one training stage of one configuration, cached in ``CACHE/<stage>-<key>/`` where
  ``key = hash(config + code version)`` (:func:`ensure_teacher`, :func:`ensure_student`). Rows that share a
  configuration (the default teacher of Tables 1, 3-8 and Figure 6) train it once; an interrupted training
  resumes from its epoch checkpoints; a per-job lock file lets parallel workers share one cache.
* **rows** -- :func:`run_row` ``(table, row, profile, data, device, seed, cache_dir, rows_dir, ...) -> records``
  trains (or loads) what one row needs, evaluates it and writes its records to
  ``OUT/rows/<table>/<row>/seed<k>.json`` (atomically). A row with a finished result for the same
  configuration and code is not recomputed. Rows are independent, file-based units of work:
  :mod:`itespy.scheduler` (``--jobs N``, ``--executor slurm``) runs them in worker processes or Slurm jobs
  into one ``OUT``, in any order. :func:`run_table` runs a table's rows.
* **runner** -- :func:`reproduce` executes the table notebooks (notebooks/05-08) with papermill, keeping
  each executed copy in ``OUT/notebooks/``; then adds seeds to the rows of close claims, and writes
  ``OUT/results.json``, ``OUT/REPORT.md`` and ``OUT/figures/*.png``. A failing notebook is reported with its
  name and failing cell and the other notebooks still run. Two runs into one ``OUT`` are refused (``OUT/.lock``).

``results.json`` is an object: ``{"format", "updated", "records": [...], "claims": [...], "notebooks": [...],
"runs": [...]}``; every record is one number: ``table, row, label, metric, protocol, unit, kit, paper,
delta, seed, profile, variant, data, test_data, model, status (ok | skipped | error), note, time (ISO
UTC), seconds, device, overrides, jobs, code_version``.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import functools
import hashlib
import json
import os
import shutil
import socket
import sys
import time
import traceback
import uuid
from contextlib import contextmanager
from pathlib import Path

from . import __version__
from . import experiments as ex
from .config import PROFILES, VARIANTS, Config, make_config
from .io import atomic_write_json, atomic_write_text

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = REPO / "notebooks"
REPORT_FIGURES_DIR = REPO / "figures" / "report"
RESULTS_FORMAT = "itespy-reproduce/1"
SEED_PASSES = 3  # rounds of "add seeds to the rows of close claims" per run

# Source files that do not change what a trained model or a metric is (excluded from the code version).
_CODE_EXCLUDE = {"experiments.py", "reproduce.py", "scheduler.py", "viz.py", "cli.py", "__main__.py", "predict.py",
                 "summary.py"}
# Config fields that do not change a result (the device is recorded, not hashed; eval batching is exact).
RUN_FIELDS = ("device", "eval_batch_size", "extra")
# Fields only stage 2 reads: reset to defaults in a teacher job so that every student shares its teacher.
STUDENT_FIELDS = ("student", "graph", "student_channels", "student_blocks", "use_kd", "use_rec", "lambda_kd",
                  "lambda_rec", "student_epochs", "kd_norm", "rec_rotation", "student_optimizer")


class ReproduceLockedError(RuntimeError):
    """Another reproduce run is writing into the same output directory."""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def code_version() -> str:
    """Hash of the itespy sources that define training and evaluation (plus the package version).

    The environment variable ``ITESPY_CODE_VERSION`` replaces it (e.g. to pin one version for every worker
    of a batch while the sources are being edited, or in tests); cache keys then ignore source changes."""
    return os.environ.get("ITESPY_CODE_VERSION") or _source_hash()


@functools.lru_cache(maxsize=None)
def _source_hash() -> str:
    h = hashlib.sha256(__version__.encode())
    root = Path(__file__).resolve().parent
    for path in sorted(root.rglob("*.py")):
        if path.name in _CODE_EXCLUDE or "__pycache__" in path.parts:
            continue
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


# ----------------------------------------------------------------------------------------------------
# Jobs: cached trainings
# ----------------------------------------------------------------------------------------------------


def teacher_config(cfg: Config) -> Config:
    """The configuration of the teacher a row needs: the student's fields reset to their defaults."""
    defaults = Config()
    return cfg.replace(**{f: getattr(defaults, f) for f in STUDENT_FIELDS})


def job_key(cfg: Config, teacher_key: str | None = None) -> str:
    hashed = {k: v for k, v in cfg.to_dict().items() if k not in RUN_FIELDS}
    return _hash({"config": hashed, "code": code_version(), "teacher": teacher_key})


# A job lock is refreshed (its mtime touched) every LOCK_HEARTBEAT_S by the worker holding it; a lock not
# refreshed for LOCK_STALE_S is stale (its worker died, e.g. a pre-empted Slurm job on another node).
LOCK_HEARTBEAT_S = 30.0
LOCK_STALE_S = 600.0


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host is running (a zombie, finished but not yet reaped, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _read_lock(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _lock_is_stale(path: Path, info: dict, stale_after: float) -> bool:
    """A lock left by a dead process: its pid is gone (same host), or it stopped being refreshed (any host)."""
    if info.get("host") == socket.gethostname() and isinstance(info.get("pid"), int) and not _pid_alive(info["pid"]):
        return True
    try:
        return stale_after > 0 and time.time() - path.stat().st_mtime > stale_after
    except FileNotFoundError:
        return True


def _try_lock(path: Path, stale_after: float = 0.0) -> bool:
    """Create ``path`` exclusively with our pid; clear it first if it is stale (see :func:`_lock_is_stale`;
    ``stale_after=0`` trusts only the pid check)."""
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if _lock_is_stale(path, _read_lock(path), stale_after):
                path.unlink(missing_ok=True)
                continue
            return False
        with os.fdopen(fd, "w") as fh:
            json.dump({"pid": os.getpid(), "host": socket.gethostname(), "started": _now()}, fh)
        return True
    return False


@contextmanager
def _heartbeat(path: Path, every: float):
    """Touch ``path`` every ``every`` seconds (from a daemon thread) while the block runs."""
    import threading
    stop = threading.Event()

    def beat():
        while not stop.wait(every):
            try:
                os.utime(path)
            except OSError:
                return
    thread = threading.Thread(target=beat, name=f"heartbeat {path.name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextmanager
def _job_lock(path: Path, poll: float = 2.0, log=None, stale_after: float | None = None,
              heartbeat: float | None = None):
    """Wait until no other worker trains this job, then hold its lock (refreshed by a heartbeat, so that a
    worker on another node can tell a live lock from one its dead holder left behind)."""
    stale_after = LOCK_STALE_S if stale_after is None else stale_after
    path.parent.mkdir(parents=True, exist_ok=True)
    said = False
    while not _try_lock(path, stale_after):
        if log and not said:
            log(f"  waiting for {path.name} (another worker is training it: {_read_lock(path)})")
            said = True
        time.sleep(poll)
    try:
        with _heartbeat(path, LOCK_HEARTBEAT_S if heartbeat is None else heartbeat):
            yield
    finally:
        path.unlink(missing_ok=True)


@functools.lru_cache(maxsize=8)
def _splits_cached(data: str, seed: int, max_train, max_test, stride: int):
    from .data import load_splits
    return load_splits(data, seed=seed, max_train=max_train, max_test=max_test, stride=stride)


def load_row_splits(cfg: Config) -> dict:
    """{'train', 'test'} PoseSets of a configuration (cached in memory for the rows of one process)."""
    return _splits_cached(cfg.data, cfg.seed, cfg.max_train, cfg.max_test, cfg.stride)


def _done(job_dir: Path, force_token: str) -> bool:
    if not (job_dir / "metrics.json").exists():
        return False
    return not force_token or _token(job_dir) == force_token


def _token(job_dir: Path) -> str:
    path = job_dir / "force_token"
    return path.read_text().strip() if path.exists() else ""


def _run_job(cfg: Config, job_dir: Path, stage: str, force_token: str, progress: bool, teacher_dir=None,
             log=None) -> dict:
    from .run import run_experiment
    with _job_lock(job_dir.parent / f"{job_dir.name}.lock", log=log):
        if _done(job_dir, force_token):
            return json.loads((job_dir / "metrics.json").read_text())
        retrain = bool(force_token) and job_dir.exists() and _token(job_dir) != force_token
        if log:
            log(f"  training {job_dir.name} ({stage}){' [--force]' if retrain else ''}")
        metrics = run_experiment(cfg, job_dir, stage=stage, splits=load_row_splits(cfg), resume=not retrain,
                                 overwrite=retrain, progress=progress, teacher_dir=teacher_dir)
        if force_token:
            atomic_write_text(job_dir / "force_token", force_token)
        atomic_write_json(job_dir / "job.json", {"stage": stage, "key": job_dir.name.split("-", 1)[1],
                                                 "code_version": code_version(), "finished": _now(),
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
    if _done(job_dir, force_token):
        return job_dir, json.loads((job_dir / "metrics.json").read_text())
    return job_dir, _run_job(tcfg, job_dir, "teacher", force_token, progress, log=log)


def ensure_student(cfg: Config, cache_dir, force_token: str = "", progress: bool = False, log=None):
    """Train (or load) the student of ``cfg`` (and, with L_KD on, its teacher first). Returns (job dir, metrics)."""
    teacher_dir, tkey = None, None
    if cfg.use_kd:
        teacher_dir, _ = ensure_teacher(cfg, cache_dir, force_token, progress, log)
        tkey = teacher_dir.name
    job_dir = Path(cache_dir) / student_job_name(cfg, tkey)
    if _done(job_dir, force_token):
        return job_dir, json.loads((job_dir / "metrics.json").read_text())
    return job_dir, _run_job(cfg, job_dir, "student", force_token, progress, teacher_dir=teacher_dir, log=log)


# ----------------------------------------------------------------------------------------------------
# Rows
# ----------------------------------------------------------------------------------------------------


def inference_ms(model, device, repeats: int = 100, warmup: int = 10) -> float:
    """Median wall time (ms) of one forward pass of one pose (batch size 1) on ``device``."""
    import torch
    gen = torch.Generator().manual_seed(0)
    x = (0.1 * torch.randn(1, 17, 2, generator=gen)).to(device)
    model = model.to(device).eval()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times = []
    with torch.no_grad():
        for i in range(warmup + repeats):
            sync()
            t0 = time.perf_counter()
            model(x)
            sync()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    times.sort()
    return 1000.0 * times[len(times) // 2]


def _cost_values(cfg: Config, row) -> dict:
    import torch
    from .models import build_student, build_teacher, count_parameters
    from .train import resolve_device
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = build_teacher(cfg) if row.model == "teacher" else build_student(cfg)
    return {"params": count_parameters(model) / 1e6, "ms": inference_ms(model, device)}, {"device": str(device)}


def _test_3dhp(cfg: Config, job_dir: Path, model: str, test_data: str) -> dict:
    from .data import load_test_set
    from .evaluate import evaluate_model
    from .train import load_model, resolve_device
    device = resolve_device(cfg.device)
    scale = load_row_splits(cfg)["train"].scale
    test = load_test_set(test_data, scale=scale, seed=cfg.seed, max_test=cfg.max_test)
    net, _ = load_model(job_dir / f"{model}.pt", model, device)
    return {**evaluate_model(net, test, device, protocols=("pck150", "auc"), teacher_output=cfg.teacher_output),
            "frames": len(test)}


def shown_spec(spec) -> str:
    """A DATA spec as a report shows it: an absolute path is written relative to the repository (so a
    committed report names no machine's folders); ``synthetic`` and relative paths stay as written."""
    if not spec or ":" not in spec:
        return spec
    source, path = spec.split(":", 1)
    if not os.path.isabs(path):
        return spec
    return f"{source}:{os.path.relpath(path, REPO)}"


def _row_file(rows_dir, table_id, row_id, seed) -> Path:
    return Path(rows_dir) / table_id / row_id / f"seed{seed}.json"


def row_key(table_id: str, row_id: str, cfg: Config, test_data: str | None) -> str:
    t = ex.get_table(table_id)
    row = t.row(row_id)
    hashed = {k: v for k, v in cfg.to_dict().items() if k not in RUN_FIELDS}
    return _hash({"table": table_id, "row": row_id, "config": hashed, "code": code_version(), "model": row.model,
                  "metrics": list(t.metrics), "test": test_data if row.test == "3dhp" else None,
                  "device": cfg.device if t.kind == "cost" else None})


def _stored_row(path, key: str, force_token: str = ""):
    """The records stored at ``path`` when they were computed with ``key`` (and ``force_token``), else None."""
    if path is None or not Path(path).exists():
        return None
    try:
        stored = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if stored.get("key") == key and (not force_token or stored.get("force_token") == force_token):
        return stored["records"]
    return None


def row_finished(table_id: str, row_id: str, seed: int, rows_dir, profile: str = "smoke", data: str = "synthetic",
                 device: str = "auto", overrides: dict | None = None, variant: str = "paper",
                 test_data: str | None = None, force_token: str = "") -> bool:
    """Whether ``rows_dir`` holds this row's result for the same configuration and code (what
    :func:`run_row` would return without computing anything)."""
    cfg = ex.row_config(table_id, row_id, profile, data, seed, device, variant, dict(overrides or {}))
    key = row_key(table_id, row_id, cfg, test_data or None)
    return _stored_row(_row_file(rows_dir, table_id, row_id, seed), key, force_token) is not None


def run_row(table_id: str, row_id: str, profile: str = "smoke", data: str = "synthetic", device: str = "auto",
            seed: int = 0, cache_dir="runs/cache", rows_dir=None, overrides: dict | None = None,
            variant: str = "paper", test_data: str | None = None, force_token: str = "", progress: bool = False,
            log=None) -> list:
    """Train/load, evaluate and record one row. Returns its records (one per column of the table).

    Pure and file-based: everything it needs is in its arguments and in ``cache_dir``; its result goes to
    ``rows_dir/<table>/<row>/seed<k>.json`` (when ``rows_dir`` is given) and is reused on the next call with
    the same configuration and code (unless ``force_token`` is new). Raises on failure (see :func:`run_table`)."""
    t = ex.get_table(table_id)
    row = t.row(row_id)
    overrides = dict(overrides or {})
    test_data = test_data or None
    spec, reason = ex.row_data(row, data)
    cfg = ex.row_config(t.id, row.id, profile, data, seed, device, variant, overrides)
    key = row_key(t.id, row.id, cfg, test_data)
    path = None if rows_dir is None else _row_file(rows_dir, t.id, row.id, seed)
    stored = _stored_row(path, key, force_token)
    if stored is not None:
        return stored

    t0 = time.time()
    base = {"table": t.id, "row": row.id, "label": row.label, "model": row.model, "seed": seed, "profile": profile,
            "variant": variant, "data": spec or data, "user_data": data, "test_data": test_data,
            "overrides": overrides, "code_version": code_version(), "device": device, "threads": cfg.threads,
            "jobs": [], "note": row.note}
    values, extra = {}, {}
    if spec is None:
        status, base["note"] = "skipped", reason
    elif t.kind == "cost":
        status = "ok"
        values, extra = _cost_values(cfg, row)
        base["note"] = "; ".join(s for s in (row.note, f"timed on {extra['device']}, batch size 1") if s)
    else:
        status = "ok"
        if row.model == "teacher":
            job_dir, metrics = ensure_teacher(cfg, cache_dir, force_token, progress, log)
        else:
            job_dir, metrics = ensure_student(cfg, cache_dir, force_token, progress, log)
        base["jobs"] = [job_dir.name]
        evaluated = metrics[row.model]
        if row.test == "3dhp":
            if test_data:
                evaluated = _test_3dhp(cfg, job_dir, row.model, test_data)
                base["note"] = f"trained on {spec}, tested on {test_data} ({evaluated['frames']} frames)"
            else:
                base["note"] = (f"no MPI-INF-3DHP data given (--test-data 3dhp:DIR): PCK/AUC on the test split of "
                                f"{spec} instead")
        for m in t.metrics:
            values[m] = evaluated[ex.METRICS[m].protocol]["mean"]
        extra = {"frames": evaluated.get("frames"), "device": metrics.get("device", device)}
    seconds = time.time() - t0
    records = []
    for m in t.metrics:
        kit, paper = values.get(m), row.paper.get(m)
        records.append({**base, "metric": m, "protocol": ex.METRICS[m].protocol, "unit": ex.METRICS[m].unit,
                        "kit": kit, "paper": paper,
                        "delta": None if kit is None or paper is None else kit - paper,
                        "status": status, "time": _now(), "seconds": seconds, **extra})
    if path is not None:
        atomic_write_json(path, {"key": key, "force_token": force_token, "records": records})
        path.with_name(f"seed{seed}.error.json").unlink(missing_ok=True)
    return records


def error_records(table_id: str, row_id: str, seed: int, profile: str, data: str, exc: BaseException,
                  **extra) -> list:
    t = ex.get_table(table_id)
    row = t.row(row_id)
    message = f"{type(exc).__name__}: {exc}"
    return [{"table": t.id, "row": row.id, "label": row.label, "model": row.model, "seed": seed, "profile": profile,
             "data": data, "metric": m, "protocol": ex.METRICS[m].protocol, "unit": ex.METRICS[m].unit, "kit": None,
             "paper": row.paper.get(m), "delta": None, "status": "error", "note": message, "time": _now(),
             "code_version": code_version(), **extra} for m in t.metrics]


def run_table(table_id: str, profile: str = "smoke", data: str = "synthetic", device: str = "auto", seed: int = 0,
              out_dir="runs/notebooks", cache_dir=None, overrides: dict | None = None, variant: str = "paper",
              test_data: str | None = None, force_token: str = "", rows=None, progress: bool = False,
              log=print, errors: str = "record", compute: bool = True) -> list:
    """Run (or load) every row of one table into ``out_dir`` (rows in ``out_dir/rows``, trained models in
    ``cache_dir``, default ``out_dir/cache``). A failing row gives ``status="error"`` records (also written
    to ``rows/<table>/<row>/seed<k>.error.json``) and the other rows still run (``errors="raise"`` re-raises).

    ``compute=False`` trains nothing: it collects the rows a scheduler (``reproduce --jobs``/``--executor``,
    :mod:`itespy.scheduler`) already ran; a row that needs training and has no result gives its stored error
    (or a "not computed" error). Rows that train nothing (cost, skipped) are still computed here."""
    t = ex.get_table(table_id)
    out_dir = Path(out_dir)
    cache_dir = Path(cache_dir) if cache_dir else out_dir / "cache"
    rows_dir = out_dir / "rows"
    records = []
    for row in t.rows:
        if rows and row.id not in rows:
            continue
        t0 = time.time()
        if not compute and row_trains(t.id, row.id, data) and not row_finished(
                t.id, row.id, seed, rows_dir, profile, data, device, overrides, variant, test_data, force_token):
            recs = _uncomputed_records(rows_dir, t.id, row.id, seed, profile, data, variant, overrides, test_data)
            if log:
                log(_row_line(recs, time.time() - t0))
            records += recs
            continue
        try:
            recs = run_row(t.id, row.id, profile, data, device, seed, cache_dir, rows_dir, overrides, variant,
                           test_data, force_token, progress, log)
        except Exception as exc:  # noqa: BLE001 -- one row must not stop the table
            if errors == "raise":
                raise
            recs = error_records(t.id, row.id, seed, profile, data, exc, variant=variant,
                                 overrides=dict(overrides or {}), user_data=data, test_data=test_data or None,
                                 traceback=traceback.format_exc(limit=6))
            atomic_write_json(_row_file(rows_dir, t.id, row.id, seed).with_name(f"seed{seed}.error.json"),
                              {"records": recs})
        if log:
            log(_row_line(recs, time.time() - t0))
        records += recs
    return records


def row_jobs(table_id: str, row_id: str, profile: str, data: str, device: str = "auto", variant: str = "paper",
             overrides: dict | None = None, seed: int = 0) -> tuple:
    """(teacher job, student job or None): the cache jobs a row trains, named as ``ensure_teacher`` /
    ``ensure_student`` name them; the teacher job is None for a student trained without L_KD."""
    row = ex.get_table(table_id).row(row_id)
    cfg = ex.row_config(table_id, row_id, profile, data, seed, device, variant, dict(overrides or {}))
    teacher = teacher_job_name(cfg) if (row.model == "teacher" or cfg.use_kd) else None
    student = None if row.model == "teacher" else student_job_name(cfg, teacher)
    return teacher, student


def same_model_rows(rows, tables, profile, data, device="auto", variant="paper", overrides=None) -> list:
    """Rows of ``tables`` (not in ``rows``) that report the same trained model as one of ``rows`` (e.g. Table
    1's ITES-TS and Table 3's full model)."""
    def model(t, r):
        teacher, student = row_jobs(t, r, profile, data, device, variant, overrides)
        return student or teacher
    wanted = {model(t, r) for t, r in rows if row_trains(t, r, data)}
    return [(t, r) for t in tables for r in ex.get_table(t).row_ids
            if (t, r) not in set(rows) and row_trains(t, r, data) and model(t, r) in wanted]


def row_trains(table_id: str, row_id: str, data: str) -> bool:
    """Whether a row trains a model (False for cost rows and rows skipped for lack of data)."""
    t = ex.get_table(table_id)
    return t.kind != "cost" and ex.row_data(t.row(row_id), data)[0] is not None


def _uncomputed_records(rows_dir, table_id, row_id, seed, profile, data, variant, overrides, test_data) -> list:
    """The stored error of a row the scheduler could not finish, or a 'not computed' error."""
    path = _row_file(rows_dir, table_id, row_id, seed).with_name(f"seed{seed}.error.json")
    try:
        return json.loads(path.read_text())["records"]
    except (OSError, ValueError, KeyError):
        exc = RuntimeError("not computed: the scheduler (--jobs / --executor) has no result for this row; rerun "
                           "the same `itespy reproduce` command to retry it")
        return error_records(table_id, row_id, seed, profile, data, exc, variant=variant,
                             overrides=dict(overrides or {}), user_data=data, test_data=test_data or None)


def run_tables(table_ids, **kwargs) -> list:
    """:func:`run_table` for each table id (``["T3", "F6"]`` or ``"T3,F6"``)."""
    records = []
    for tid in ex.parse_only(table_ids):
        records += run_table(tid, **kwargs)
    return records


def _row_line(recs: list, seconds: float) -> str:
    r = recs[0]
    if r["status"] != "ok":
        return f"{r['table']} {r['label']}: {r['status']} ({r['note']})"
    vals = ", ".join(f"{x['metric']} {x['kit']:.{ex.METRICS[x['metric']].digits}f}" for x in recs)
    return f"{r['table']} {r['label']} (seed {r['seed']}): {vals}  [{seconds:.1f} s]"


def load_records(out_dir) -> list:
    """Every record under ``out_dir/rows`` (finished rows and row errors)."""
    rows_dir = Path(out_dir) / "rows"
    records = []
    for path in sorted(rows_dir.glob("*/*/seed*.json")):
        try:
            records += json.loads(path.read_text())["records"]
        except (OSError, ValueError, KeyError):
            continue
    return records


def select_records(records, profile, data, variant="paper", overrides=None, test_data=None) -> list:
    """The records of one run setting (results.json may hold records of several)."""
    ov = json.dumps(dict(overrides or {}), sort_keys=True)
    return [r for r in records if r.get("profile") == profile and r.get("user_data", r.get("data")) == data
            and r.get("variant", "paper") == variant and json.dumps(r.get("overrides") or {}, sort_keys=True) == ov
            and (r.get("table") != "T2" or (r.get("test_data") or None) == (test_data or None))]


# ----------------------------------------------------------------------------------------------------
# Runner
# ----------------------------------------------------------------------------------------------------


class OutLock:
    """``OUT/.lock`` with our pid while a run writes into ``OUT``; a second run is refused."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.path = self.out / ".lock"
        self.held = False

    def __enter__(self):
        self.out.mkdir(parents=True, exist_ok=True)
        if not _try_lock(self.path):
            info = _read_lock(self.path)
            raise ReproduceLockedError(
                f"output directory {self.out}: another `itespy reproduce` is writing into it (pid {info.get('pid')} "
                f"on {info.get('host')}, started {info.get('started')}). Two runs must not share one --out: wait "
                f"for it to finish or choose another --out. If that process is gone, delete {self.path}.")
        self.held = True
        return self

    def __exit__(self, *exc):
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False


def _check_inputs(profile, variant, overrides, data, test_data, device):
    """Fail before any notebook runs on a bad override, DATA spec, missing data folder or device."""
    from .data.spec import parse_spec
    from .train import resolve_device
    make_config(profile, variant, **{**overrides, "data": data})
    for spec, what in ((data, "--data"), (test_data, "--test-data")):
        if not spec:
            continue
        source, path = parse_spec(spec)
        if path is not None and not Path(path).exists():
            raise FileNotFoundError(f"{what} {spec!r}: {path} does not exist (see docs/data.md)")
    if test_data and parse_spec(test_data)[0] != "3dhp":
        raise ValueError(f"--test-data {test_data!r}: expected 3dhp:DIR (MPI-INF-3DHP, Table 2)")
    resolve_device(device)


def execute_notebook(source: Path, target: Path, parameters: dict, timeout: int | None = None,
                     threads: int | None = None) -> dict:
    """Execute ``source`` with papermill into ``target`` (written in place only when done); returns a status
    dict ``{'notebook', 'status': 'ok'|'failed', 'seconds', 'executed', 'cell', 'error', 'source'}``.
    ``threads``: the kernel's torch threads (through ``OMP_NUM_THREADS``, which torch reads when it starts)."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    target.parent.mkdir(parents=True, exist_ok=True)
    running = target.with_name(f".{target.stem}.running.ipynb")
    status = {"notebook": source.name, "status": "ok", "executed": str(target), "cell": None, "error": None,
              "source": None, "tables": parameters.get("tables")}
    t0 = time.time()
    env_before = {k: os.environ.get(k) for k in ("PYTHONPATH", "OMP_NUM_THREADS")}
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([env_before["PYTHONPATH"]]
                                                              if env_before["PYTHONPATH"] else []))
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        pm.execute_notebook(str(source), str(running), parameters=parameters, cwd=str(source.parent),
                            kernel_name="python3", progress_bar=False, log_output=False,
                            execution_timeout=timeout)
    except PapermillExecutionError as exc:
        status.update(status="failed", cell=exc.exec_count, cell_index=exc.cell_index,
                      error=f"{exc.ename}: {exc.evalue}", source=_first_line(exc.source))
    except Exception as exc:  # noqa: BLE001 -- missing file, kernel death, timeout...
        status.update(status="failed", error=f"{type(exc).__name__}: {exc}")
    finally:
        for key, value in env_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if running.exists():
            os.replace(running, target)
    status["seconds"] = round(time.time() - t0, 1)
    return status


def _notebook_key(source: Path, params: dict) -> str:
    """What an executed notebook depends on: its source, its parameters and the kit's code."""
    here = Path(__file__).resolve().parent
    return _hash({"source": hashlib.sha256(source.read_bytes()).hexdigest() if source.exists() else None,
                  "params": {k: v for k, v in params.items() if k not in ("force_token", "compute")},
                  "code": code_version(),
                  "runner": [hashlib.sha256((here / f).read_bytes()).hexdigest() for f in
                             ("experiments.py", "reproduce.py")]})


def _rows_finished(out: Path, tables) -> bool:
    """Every row of ``tables`` has a finished (seed 0) result file in ``out/rows``."""
    return all(_row_file(out / "rows", t, r, 0).exists() for t in tables for r in ex.get_table(t).row_ids)


def _first_line(source) -> str:
    lines = [s for s in (source or "").splitlines() if s.strip() and not s.startswith("#")]
    return lines[0][:120] if lines else ""


def _profile_description(profile: str, variant: str, overrides: dict) -> str:
    cfg = make_config(profile, variant, **(overrides or {}))
    return (f"{cfg.max_train or 'all'} training poses (max), {cfg.max_test or 'all'} test poses (max), "
            f"{cfg.teacher_epochs} teacher + {cfg.student_epochs} student epochs, {cfg.optimizer} lr {cfg.lr:g}, "
            f"batch {cfg.batch_size}, teacher {cfg.teacher_hidden}/{cfg.teacher_bottleneck}×{cfg.teacher_blocks}, "
            f"student {cfg.student_channels}×{cfg.student_blocks}")


def _merge(old: list, new: list) -> list:
    """Records of ``new`` replace those of ``old`` with the same identity; the rest of ``old`` is kept."""
    def ident(r):
        return (r.get("table"), r.get("row"), r.get("metric"), r.get("seed"), r.get("profile"), r.get("variant"),
                r.get("user_data", r.get("data")), json.dumps(r.get("overrides") or {}, sort_keys=True),
                r.get("test_data") if r.get("table") == "T2" else None)
    merged = {ident(r): r for r in old}
    merged.update({ident(r): r for r in new})
    return list(merged.values())


def _read_results(path: Path) -> dict:
    if path.exists():
        try:
            data = json.loads(path.read_text())
            if isinstance(data, dict) and isinstance(data.get("records"), list):
                return data
        except ValueError:
            pass
    return {"format": RESULTS_FORMAT, "records": [], "claims": [], "notebooks": [], "runs": []}


def _write_results(out: Path, new_records: list, claims=None, notebooks=None, run=None) -> dict:
    path = out / "results.json"
    data = _read_results(path)
    data["format"] = RESULTS_FORMAT
    data["records"] = _merge(data["records"], new_records)
    data["records"].sort(key=lambda r: (ex.TABLE_IDS.index(r["table"]) if r.get("table") in ex.TABLE_IDS else 99,
                                        r.get("row", ""), r.get("metric", ""), r.get("seed", 0)))
    if claims is not None:
        data["claims"] = claims
    if notebooks is not None:
        done = {n["notebook"]: n for n in data.get("notebooks", [])}
        done.update({n["notebook"]: n for n in notebooks})
        data["notebooks"] = list(done.values())
    if run is not None:
        data["runs"] = [r for r in data.get("runs", []) if r.get("id") != run.get("id")] + [run]
    data["updated"] = _now()
    atomic_write_json(path, data)
    return data


def reproduce(profile: str = "smoke", only=None, data: str = "synthetic", device: str = "auto", out=None,
              force: bool = False, seeds: int | None = None, overrides: dict | None = None, variant: str = "paper",
              test_data: str | None = None, cache_dir=None, notebooks_dir=None, timeout: int | None = None,
              report_figures_dir=None, log=print, jobs: int = 1, executor: str = "local", retries: int | None = None,
              slurm: dict | None = None, poll: float | None = None, progress: bool = True,
              threads: int | None = None) -> dict:
    """Run the notebooks of the selected tables, extra seeds for close claims, then write results.json,
    REPORT.md and figures into ``out``. Returns {'out', 'records', 'claims', 'notebooks', 'seconds', 'failed'}.

    With ``jobs > 1`` or ``executor`` "slurm" / "submitit-local", the rows are first computed in parallel by
    :mod:`itespy.scheduler` (worker processes or Slurm jobs); the notebooks then only collect them."""
    from . import scheduler
    if profile not in PROFILES:
        raise ValueError(f"profile: expected one of {PROFILES}, got {profile!r}")
    if executor not in scheduler.EXECUTORS:
        raise ValueError(f"--executor: expected one of {scheduler.EXECUTORS}, got {executor!r}")
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"--jobs: expected a positive number of workers, got {jobs!r}")
    retries = scheduler.DEFAULT_RETRIES if retries is None else retries
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"--threads: expected a positive number of torch threads, got {threads!r}")
    if retries < 0:
        raise ValueError(f"--retries: expected 0 or more, got {retries}")
    scheduled = jobs > 1 or executor != "local"
    if executor != "local":
        import importlib.util
        if importlib.util.find_spec("submitit") is None:
            raise RuntimeError(f"--executor {executor} needs the submitit package: pip install submitit")
        if executor == "slurm" and not (shutil.which("sbatch") and shutil.which("srun")):
            raise RuntimeError("--executor slurm: sbatch/srun not found on this machine; run from a Slurm login "
                               "node (or try the same path here with --executor submitit-local)")
    overrides = dict(overrides or {})
    _check_inputs(profile, variant, overrides, data, test_data, device)
    tables = ex.parse_only(only)
    out = Path(out or f"runs/reproduce-{profile}").resolve()
    cache = Path(cache_dir).resolve() if cache_dir else out / "cache"
    nb_dir = Path(notebooks_dir) if notebooks_dir else NOTEBOOKS_DIR
    n_seeds = seeds if seeds is not None else ex.PROFILE_SEEDS[profile]
    if n_seeds < 1:
        raise ValueError(f"--seeds: expected a positive number, got {n_seeds}")
    token = uuid.uuid4().hex if force else ""
    t_start = time.time()
    run = {"id": uuid.uuid4().hex[:12], "started": _now(), "profile": profile, "variant": variant, "data": data,
           "test_data": test_data, "device": device, "tables": tables, "seeds": n_seeds, "overrides": overrides,
           "force": force, "itespy": __version__, "code_version": code_version(), "pid": os.getpid()}
    run.update(executor=executor, parallel_jobs=jobs, threads=threads)
    settings = scheduler.row_settings(profile, data, device, out, cache, overrides, variant, test_data, token)

    def compute_rows(items):
        """The scheduler's pass over ``items`` (table, row, seed) before the notebooks collect them."""
        if scheduled:
            scheduler.run_rows(items, settings, executor, jobs, retries, out / "jobs", slurm, poll, log, progress,
                               threads)

    from .train import torch_threads  # torch is imported only when a run starts
    with OutLock(out), torch_threads(threads):
        statuses = []
        compute_rows([(t, r, 0) for t in tables for r in ex.get_table(t).row_ids])
        earlier = {n["notebook"]: n for n in _read_results(out / "results.json").get("notebooks", [])}
        for stem, nb_tables in ex.NOTEBOOKS.items():
            selected = [t for t in nb_tables if t in tables]
            if not selected:
                continue
            params = {"profile": profile, "data": data, "device": device, "seed": 0, "out_dir": str(out),
                      "cache_dir": str(cache), "tables": selected, "rows": [], "overrides": overrides,
                      "variant": variant, "test_data": test_data or "", "force_token": token,
                      "figures_dir": str(out / "figures" / stem), "compute": not scheduled}
            source = nb_dir / f"{stem}.ipynb"
            key = _notebook_key(source, params)
            previous = earlier.get(source.name, {})
            if not force and previous.get("status") == "ok" and previous.get("key") == key \
                    and Path(previous.get("executed", "")).exists() and _rows_finished(out, selected):
                log(f"notebook {stem}.ipynb: up to date (tables {', '.join(selected)}), not re-executed")
                statuses.append({**previous, "reused": True})
                continue
            log(f"notebook {stem}.ipynb: tables {', '.join(selected)}")
            status = execute_notebook(source, out / "notebooks" / f"{stem}.ipynb", params, timeout, threads)
            status["key"] = key
            statuses.append(status)
            if status["status"] == "ok":
                log(f"  done in {status['seconds']:.0f} s")
            else:
                log(f"  FAILED: {_failure_text(status)}")
            _write_results(out, load_records(out), notebooks=statuses, run=run)

        # More seeds for the rows of the claims whose comparison is close. Averaging over seeds can make
        # other comparisons close: repeat until no new row is close (at most SEED_PASSES times).
        records = select_records(load_records(out), profile, data, variant, overrides, test_data)
        seeded = set()
        for _ in range(SEED_PASSES if n_seeds > 1 else 0):
            claims = ex.evaluate_claims(ex.aggregate(records), tables)
            close = {tuple(ref) for c in claims for ref in c["close"] if ref[0] in tables}
            new = sorted(close - seeded)
            if not new:
                break
            log(f"seeds 1..{n_seeds - 1} for {len(new)} row(s) of close claims: "
                + ", ".join(f"{a}:{b}" for a, b in new))
            twins = [r for r in same_model_rows(new, tables, profile, data, device, variant, overrides)
                     if r not in seeded]
            if twins:  # the same model in another table: evaluated on the same seeds, so tables agree
                log(f"  and {len(twins)} row(s) reporting the same models: " + ", ".join(f"{a}:{b}" for a, b in twins))
            new = sorted(set(new) | set(twins))
            seeded |= set(new)
            compute_rows([(t, r, seed) for seed in range(1, n_seeds) for t, r in new])
            for seed in range(1, n_seeds):
                for table_id, row_id in new:
                    _write_results(out, run_table(table_id, profile, data, device, seed, out, cache, overrides,
                                                  variant, test_data, token, [row_id], log=log,
                                                  compute=not scheduled))
            records = select_records(load_records(out), profile, data, variant, overrides, test_data)

        values = ex.aggregate(records)
        claims = ex.evaluate_claims(values, tables)
        run["flat_baseline"] = flat_baseline(profile, data, variant, overrides)
        figures = write_figures(out, tables, values, profile, report_figures_dir)
        run.update(finished=_now(), seconds=round(time.time() - t_start, 1))
        if scheduled:
            run["tasks"] = scheduler.state_summary(out / "jobs" / "state.json")
        results = _write_results(out, load_records(out), claims=claims, notebooks=statuses, run=run)
        same = [r for r in results["runs"] if r.get("profile") == profile and r.get("data") == data]
        run["all_runs"] = {"runs": len(same), "seconds": round(sum(r.get("seconds") or 0.0 for r in same), 1)}
        report = report_markdown(tables, values, claims, statuses, run, figures, out)
        atomic_write_text(out / "REPORT.md", report)
    failed = [s for s in statuses if s["status"] != "ok"]
    log(f"wrote {out / 'results.json'} and {out / 'REPORT.md'} in {run['seconds']:.0f} s"
        + (f"; {len(failed)} notebook(s) failed" if failed else ""))
    return {"out": str(out), "records": results["records"], "claims": claims, "notebooks": statuses,
            "seconds": run["seconds"], "failed": failed}


def flat_baseline(profile: str, data: str, variant: str = "paper", overrides: dict | None = None):
    """MPJPE / P-MPJPE of the flat pose (all joints at the root's depth) on the test split the GT rows use;
    None when the data cannot be loaded or the kit has no such baseline."""
    try:
        from .evaluate import evaluate_flat_baseline
        spec, _ = ex.row_data(ex.TABLES["T3"].row("all"), data)
        cfg = make_config(profile, variant, **{**(overrides or {}), "data": spec})
        metrics = evaluate_flat_baseline(load_row_splits(cfg)["test"], protocols=("mpjpe_scaled_flip", "p_mpjpe_flip"))
    except Exception:  # noqa: BLE001 -- a courtesy line in the report, never a reason to fail
        return None
    return {m: metrics[ex.METRICS[m].protocol]["mean"] for m in ("MPJPE", "P-MPJPE")}


def write_figures(out: Path, tables, values: dict, profile: str, report_figures_dir=None) -> dict:
    """One figure per table with results (bar charts; Figure 6 as a curve) in ``out/figures``; copied to
    figures/report/ for the tutorial and paper profiles. Returns {table id: path relative to out}."""
    import matplotlib.pyplot as plt  # headless: matplotlib falls back to Agg without a display

    paths = {}
    for tid in tables:
        if not any(k[0] == tid and v.get("mean") is not None for k, v in values.items()):
            continue
        path = out / "figures" / f"{tid}.png"
        fig = ex.plot_table(tid, values, path, title_suffix=f" [{profile} profile]")
        plt.close(fig)
        paths[tid] = path
    target = report_figures_dir if report_figures_dir is not None else (
        REPORT_FIGURES_DIR if profile in ("tutorial", "paper") else None)
    if target is not None and paths:
        target = Path(target)
        target.mkdir(parents=True, exist_ok=True)
        for path in paths.values():
            tmp = target / f".{path.name}.tmp"
            shutil.copyfile(path, tmp)
            os.replace(tmp, target / path.name)
    return {tid: str(p.relative_to(out)) for tid, p in paths.items()}


def publish(out, target) -> Path:
    """Copy the shareable part of a run (REPORT.md, results.json, figures/*.png) to ``target``, e.g.
    results/tutorial/ for the repository; models, row files and executed notebooks stay in ``out``."""
    out, target = Path(out), Path(target)
    for name in ("REPORT.md", "results.json"):
        if not (out / name).exists():
            raise FileNotFoundError(f"{out / name}: not found; run `itespy reproduce --out {out}` first")
    for path in sorted((out / "figures").glob("*.png")):
        (target / "figures").mkdir(parents=True, exist_ok=True)
        tmp = target / "figures" / f".{path.name}.tmp"
        shutil.copyfile(path, tmp)
        os.replace(tmp, target / "figures" / path.name)
    atomic_write_text(target / "REPORT.md", (out / "REPORT.md").read_text())
    data = json.loads((out / "results.json").read_text())
    for n in data.get("notebooks", []):  # no machine-specific absolute paths in a committed file
        if n.get("executed"):
            n["executed"] = str(Path("notebooks") / Path(n["executed"]).name)
    atomic_write_json(target / "results.json", data)
    return target


def _failure_text(status: dict) -> str:
    where = f"cell {status['cell']}" if status.get("cell") is not None else "before or between cells"
    src = f" (`{status['source']}`)" if status.get("source") else ""
    return f"{status['notebook']} failed in {where}{src}: {status['error']}"


def report_markdown(tables, values: dict, claims: list, statuses: list, run: dict, figures: dict, out: Path) -> str:
    profile, overrides = run["profile"], run.get("overrides") or {}
    lines = ["# ITES reproduction report", "",
             f"* profile **{profile}** ({_profile_description(profile, run['variant'], overrides)})"
             + (f", overrides {config_str(overrides)}" if overrides else ""),
             f"* variant {run['variant']} · data `{shown_spec(run['data'])}` · Table 2 test data "
             f"`{run.get('test_data') or 'none (dev-data test split)'}` · device {run['device']}",
             f"* seeds: up to {run['seeds']} (extra seeds only for the rows of close claims) · itespy "
             f"{run['itespy']} · code version {run['code_version']} · {run['finished']} · wall time of this "
             f"invocation {run['seconds']:.0f} s (rows finished earlier are reused)"
             + (f"; {run['all_runs']['seconds']:.0f} s over the {run['all_runs']['runs']} runs of this setting into "
                "this folder" if run.get("all_runs", {}).get("runs", 0) > 1 else "")]
    if run.get("tasks"):
        tk = run["tasks"]
        how = (f"{run.get('parallel_jobs')} local worker process(es)" if run.get("executor") == "local"
               else f"{run.get('executor')} jobs")
        lines.append(f"* rows computed by {how}: {tk['done']} training task(s) done"
                     + (f", {tk['failed']} failed" if tk["failed"] else "")
                     + f", {tk['seconds'] / 3600:.2f} worker-hours over the runs into this folder (longest "
                     f"task {tk['longest']:.0f} s; `jobs/state.json`)")
    lines.append("")
    if profile in ("smoke", "tutorial") or overrides:
        lines += [f"> **Scaled-down run.** The {profile} profile{' with overrides' if overrides else ''} trains on a "
                  "fraction of the data for a few epochs (the paper: full Human3.6M, 40 + 30 epochs), so the "
                  "kit's numbers are not comparable to the paper's; they show that every experiment runs. "
                  "Read a claim's verdict only where it holds on every seed (the seeds column).", ""]
    if not run["data"].startswith(("h36m:", "h36m-cpn:")):
        lines += [f"> **Data.** `{shown_spec(run['data'])}` is not Human3.6M: errors are in mm on that data set's test split "
                  "and differ from the paper's for that reason too.", ""]
    npass = sum(1 for c in claims if c["passed"] is True)
    nfail = sum(1 for c in claims if c["passed"] is False)
    summary = (f"**Claims:** {npass} hold, {nfail} do not, {len(claims) - npass - nfail} could not be checked "
               "(details after the tables).")
    if run.get("flat_baseline"):
        fb = run["flat_baseline"]
        summary += (f" **Flat-pose baseline** (every joint at the root's depth, what an untrained student "
                    f"predicts) on this test split: MPJPE {fb['MPJPE']:.1f} mm, P-MPJPE {fb['P-MPJPE']:.1f} mm; "
                    "a trained model should beat it.")
    lines += [summary, ""]
    failed = [s for s in statuses if s["status"] != "ok"]
    if failed:
        lines += ["## Failed notebooks", ""] + [f"* {_failure_text(s)} -- executed copy: "
                                                  f"`{Path(s['executed']).relative_to(out)}`" for s in failed] + [""]
    lines += ["## Tables", ""]
    nb_of = {t: stem for stem, ts in ex.NOTEBOOKS.items() for t in ts}
    for tid in tables:
        t = ex.get_table(tid)
        lines += [f"### {t.id} · {t.title}", "",
                  f"*Paper:* {t.caption} *Notebook:* `notebooks/{nb_of[tid]}.ipynb`.", ""]
        if not any(k[0] == tid for k in values):
            why = next((_failure_text(s) for s in failed if tid in (s.get("tables") or [])), "no results")
            lines += [f"Not run: {why}.", ""]
            continue
        lines += [ex.results_table_text(tid, values, markdown=True), ""]
        if t.note:
            lines += [f"*Note:* {t.note}", ""]
        if tid in figures:
            lines += [f"![{t.id}]({figures[tid]})", ""]
    lines += ["## Claims", "", f"{npass} hold, {nfail} do not, {len(claims) - npass - nfail} could not be checked "
              "(✔ holds, ✘ does not, – not enough results).", ""]
    lines += [ex.claim_result_text(c, markdown=True) for c in claims] + [""]
    close = sum(d.endswith(("(close)", "(within seed noise)")) for c in claims for d in c["details"])
    if close:
        lines += [f"{close} comparison(s) are *close* (gap under {ex.CLOSE_FRACTION:.0%} of the values, or under the "
                  f"seed noise): their verdicts are fragile at this scale"
                  + ("; rerun with `--seeds 3` or more to firm them up." if run["seeds"] < 3 else "."), ""]
    lines += ["## Notebooks", "", "| notebook | tables | status | seconds | executed copy |",
              "| --- | --- | --- | ---: | --- |"]
    for s in statuses:
        state = s["status"] + (" (up to date: not re-executed)" if s.get("reused") else "")
        lines.append(f"| {s['notebook']} | {', '.join(s.get('tables') or [])} | {state} | {s['seconds']:.0f} | "
                     f"`{Path(s['executed']).relative_to(out)}` |")
    return "\n".join(lines) + "\n"


def config_str(overrides: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in overrides.items())


# ----------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------


def _parse_set(items) -> dict:
    out = {}
    fields = {f for f in Config().to_dict()}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in fields:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE with KEY a config field "
                             f"({', '.join(sorted(fields))})")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def _parse_slurm_set(items) -> dict:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--slurm-set {item!r}: expected KEY=VALUE, an sbatch option such as account=mylab")
        out[key.strip().replace("-", "_")] = value
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=PROFILES, default="smoke",
                        help="smoke (CI, tiny data) | tutorial (2-core CPU) | paper (the paper's epochs, a GPU)")
    parser.add_argument("--only", help=f"comma-separated tables, e.g. T3,F6 (default: all of {','.join(ex.TABLE_IDS)})")
    parser.add_argument("--data", default="synthetic", help="DATA spec (synthetic | mocap:PATH.npz | bvh:DIR | "
                        "h36m:DIR | h36m-cpn:DIR); the IMG column of Table 1 needs h36m")
    parser.add_argument("--test-data", help="3dhp:DIR for Table 2 (default: the test split of --data, said so)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--out", help="output directory (default runs/reproduce-PROFILE)")
    parser.add_argument("--cache", help="trained-model cache directory (default OUT/cache); may be shared by runs")
    parser.add_argument("--force", action="store_true", help="retrain and re-evaluate every selected row")
    parser.add_argument("--seeds", type=int, help="seeds for the rows of close claims (default: the profile's, "
                        f"{ex.PROFILE_SEEDS})")
    parser.add_argument("--variant", choices=VARIANTS, default="paper")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", dest="set_",
                        help="override a config field for every row (repeatable), e.g. --set teacher_epochs=1")
    parser.add_argument("--quick", action="store_true",
                        help="the notebooks' tiny setting (tiny networks, 1 epoch): checks the pipeline in minutes")
    parser.add_argument("--timeout", type=int, help="per-cell timeout in seconds for the notebooks")
    parser.add_argument("--publish", metavar="DIR", help="afterwards copy REPORT.md, results.json and figures/*.png "
                        "to DIR (e.g. results/tutorial)")
    par = parser.add_argument_group("parallel and cluster runs (docs/cluster.md)")
    par.add_argument("--jobs", type=int, default=1, metavar="N",
                     help="rows in parallel: N worker processes (local; spread over the GPUs when there are any), or "
                          "at most N Slurm jobs at once (slurm; default there: no limit)")
    par.add_argument("--executor", choices=("local", "slurm", "submitit-local"), default="local",
                     help="local: this machine; slurm: one Slurm job per row via submitit; submitit-local: the "
                          "Slurm path without a cluster (submitit's local executor)")
    par.add_argument("--threads", type=int, help="torch threads of each process (notebook kernel or worker) outside "
                     "training; default: all cores (serial) or cores / N (--jobs N). A training always runs with its "
                     "configuration's threads (Config.threads, --set threads=N), so the numbers do not depend on this")
    par.add_argument("--retries", type=int, help="resubmit a failed job this many times (default 2)")
    par.add_argument("--partition", help="Slurm partition")
    par.add_argument("--gpus", type=int, help="GPUs per Slurm job (default 1; 0 with --device cpu)")
    par.add_argument("--time", type=int, metavar="MIN", help="time limit per Slurm job in minutes "
                     "(default per profile: smoke 30, tutorial 120, paper 1440)")
    par.add_argument("--mem", type=float, metavar="GB", help="memory per Slurm job (default per profile: 8/16/64)")
    par.add_argument("--cpus", type=int, help="CPUs per Slurm job (default per profile: 2/4/8)")
    par.add_argument("--slurm-set", action="append", metavar="KEY=VALUE", dest="slurm_set",
                     help="any other sbatch option, e.g. --slurm-set account=mylab --slurm-set qos=high (repeatable)")
    par.add_argument("--plan", action="store_true", help="print the trainings the run still needs (what --jobs "
                     "or --executor would start, in priority order, with what each waits for) and exit")
    par.add_argument("--poll", type=float, help="seconds between job-state checks (default: local 0.5, slurm 30)")


def run_from_args(args) -> int:
    quick = ex.QUICK_OVERRIDES if getattr(args, "quick", False) else {}
    overrides = {**quick, **_parse_set(getattr(args, "set_", None))}
    slurm = {"partition": getattr(args, "partition", None), "gpus": getattr(args, "gpus", None),
             "time_min": getattr(args, "time", None), "mem_gb": getattr(args, "mem", None),
             "cpus": getattr(args, "cpus", None), "slurm_extra": _parse_slurm_set(getattr(args, "slurm_set", None))}
    if getattr(args, "plan", False):
        from . import scheduler
        out = Path(args.out or f"runs/reproduce-{args.profile}")
        settings = scheduler.row_settings(args.profile, args.data, args.device, out, args.cache, overrides,
                                          args.variant, args.test_data)
        tables = ex.parse_only(args.only)
        print(scheduler.plan_text(scheduler.plan([(t, r, 0) for t in tables for r in ex.get_table(t).row_ids],
                                                 settings)))
        return 0
    result = reproduce(profile=args.profile, only=args.only, data=args.data, device=args.device, out=args.out,
                       force=args.force, seeds=args.seeds, overrides=overrides, variant=args.variant,
                       test_data=args.test_data, cache_dir=args.cache, timeout=args.timeout,
                       jobs=getattr(args, "jobs", 1), executor=getattr(args, "executor", "local"),
                       retries=getattr(args, "retries", None), slurm=slurm, poll=getattr(args, "poll", None),
                       threads=getattr(args, "threads", None))
    for c in result["claims"]:
        print(ex.claim_result_text(c).splitlines()[0])
    if getattr(args, "publish", None):
        print(f"published to {publish(result['out'], args.publish)}")
    return 1 if result["failed"] else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m itespy reproduce", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_from_args(args)
    except (ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

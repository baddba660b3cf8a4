"""Rows: train (or load) what one row of a table needs, evaluate it, and store its records in
``OUT/rows/<table>/<row>/seed<k>.json``; a row with a finished result for the same configuration and code
is not recomputed."""
from __future__ import annotations

import json
import os
import time
import traceback
from pathlib import Path

from .. import experiments as ex
from ..config import Config, result_fields
from ..io import atomic_write_json, utc_now
from .jobs import (stable_hash, code_version, ensure_student, ensure_teacher, load_row_splits,
                   student_job_name, teacher_job_name)
from .paths import REPO

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
    from ..models import build_student, build_teacher, count_parameters
    from ..devices import resolve_device
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = build_teacher(cfg) if row.model == "teacher" else build_student(cfg)
    return {"params": count_parameters(model) / 1e6, "ms": inference_ms(model, device)}, {"device": str(device)}


def _test_3dhp(cfg: Config, job_dir: Path, model: str, test_data: str) -> dict:
    from ..data import load_test_set
    from ..evaluate import evaluate_model
    from ..devices import resolve_device
    from ..runfolder import RunFolder
    device = resolve_device(cfg.device)
    folder = RunFolder(job_dir)
    scale = folder.training_scale()
    if scale is None:  # a folder written before normalisation.json recorded the scale
        scale = load_row_splits(cfg)["train"].scale
    test = load_test_set(test_data, scale=scale, seed=cfg.seed, max_test=cfg.max_test)
    net, _ = folder.load_model(model, device)
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


def row_file(rows_dir, table_id, row_id, seed) -> Path:
    return Path(rows_dir) / table_id / row_id / f"seed{seed}.json"


def row_key(table_id: str, row_id: str, cfg: Config, test_data: str | None) -> str:
    t = ex.get_table(table_id)
    row = t.row(row_id)
    return stable_hash({"table": table_id, "row": row_id, "config": result_fields(cfg), "code": code_version(), "model": row.model,
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
    return _stored_row(row_file(rows_dir, table_id, row_id, seed), key, force_token) is not None


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
    spec, reason = row_data_here(row, data)
    cfg = ex.row_config(t.id, row.id, profile, data, seed, device, variant, overrides)
    key = row_key(t.id, row.id, cfg, test_data)
    path = None if rows_dir is None else row_file(rows_dir, t.id, row.id, seed)
    stored = _stored_row(path, key, force_token)
    if stored is not None:
        return stored

    t0 = time.time()
    base = {"table": t.id, "row": row.id, "label": row.label, "model": row.model, "seed": seed, "profile": profile,
            "variant": variant, "data": spec or data, "user_data": data, "test_data": test_data,
            "overrides": overrides, "code_version": code_version(), "device": device, "threads": cfg.threads,
            "jobs": [], "note": row.note}
    values, extra, mirror = {}, {}, {}
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
        mirror = mirror_fields(evaluated)
    seconds = time.time() - t0
    records = []
    for m in t.metrics:
        kit, paper = values.get(m), row.paper.get(m)
        records.append({**base, "metric": m, "protocol": ex.METRICS[m].protocol, "unit": ex.METRICS[m].unit,
                        "kit": kit, "paper": paper,
                        "delta": None if kit is None or paper is None else kit - paper,
                        "status": status, "time": utc_now(), "seconds": seconds, **extra, **mirror.get(m, {})})
    if path is not None:
        atomic_write_json(path, {"key": key, "force_token": force_token, "records": records})
        path.with_name(f"seed{seed}.error.json").unlink(missing_ok=True)
    return records


def mirror_fields(evaluated: dict) -> dict:
    """{metric: {'kit_nomirror', 'mirror_rate'[, 'wrong_handed_rate']}} from an evaluation: the error without the
    depth mirror, the share of poses whose mirror scored better and the share of mirror-image bodies among the
    predictions (empty for metrics the evaluation has no such numbers for)."""
    out = {}
    for m, protocol in ex.UNFLIPPED_PROTOCOLS.items():
        if protocol in evaluated and "mirror_rate" in evaluated:
            out[m] = {"kit_nomirror": evaluated[protocol]["mean"], "mirror_rate": evaluated["mirror_rate"]}
            if "wrong_handed_rate" in evaluated:
                out[m]["wrong_handed_rate"] = evaluated["wrong_handed_rate"]
    return out


def error_records(table_id: str, row_id: str, seed: int, profile: str, data: str, exc: BaseException,
                  **extra) -> list:
    t = ex.get_table(table_id)
    row = t.row(row_id)
    message = f"{type(exc).__name__}: {exc}"
    return [{"table": t.id, "row": row.id, "label": row.label, "model": row.model, "seed": seed, "profile": profile,
             "data": data, "metric": m, "protocol": ex.METRICS[m].protocol, "unit": ex.METRICS[m].unit, "kit": None,
             "paper": row.paper.get(m), "delta": None, "status": "error", "note": message, "time": utc_now(),
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
                log(row_line(recs, time.time() - t0))
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
            atomic_write_json(row_file(rows_dir, t.id, row.id, seed).with_name(f"seed{seed}.error.json"),
                              {"records": recs})
        if log:
            log(row_line(recs, time.time() - t0))
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
    return t.kind != "cost" and row_data_here(t.row(row_id), data)[0] is not None


def row_data_here(row, data: str) -> tuple:
    """:func:`ex.row_data`, and also ``(None, reason)`` when the files that spec needs are not on this machine
    (an IMG row given h36m:DIR without the CPN file): skipped before anything trains, never retried."""
    from ..data import missing_files
    spec, reason = ex.row_data(row, data)
    if spec is not None:
        missing = missing_files(spec)
        if missing:
            return None, f"{row.label} cannot run here: {missing}"
    return spec, reason


def _uncomputed_records(rows_dir, table_id, row_id, seed, profile, data, variant, overrides, test_data) -> list:
    """The stored error of a row the scheduler could not finish, or a 'not computed' error."""
    path = row_file(rows_dir, table_id, row_id, seed).with_name(f"seed{seed}.error.json")
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


def row_line(recs: list, seconds: float) -> str:
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


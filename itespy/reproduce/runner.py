"""The runner: :func:`reproduce` executes the table notebooks with papermill, adds seeds to the rows of
close claims and writes ``OUT/results.json``, ``OUT/REPORT.md`` and ``OUT/figures``; :func:`publish` copies
the shareable part to the repository."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path

from .. import __version__
from .. import experiments as ex
from ..config import PROFILES, make_config
from ..io import atomic_write_json, atomic_write_text, utc_now
from .jobs import stable_hash, code_version, load_row_splits
from .locks import OutLock
from .paths import NOTEBOOKS_DIR, REPO
from .report import failure_text, report_markdown, write_figures
from .rows import row_file, load_records, run_table, same_model_rows, select_records

RESULTS_FORMAT = "itespy-reproduce/1"
SEED_PASSES = 3  # rounds of "add seeds to every row of a close claim" per run

def check_inputs(profile, variant, overrides, data, test_data, device):
    """Fail before any notebook runs on a bad override, DATA spec, missing data folder or device."""
    from ..data import missing_files
    from ..data.spec import parse_spec
    from ..devices import resolve_device
    make_config(profile, variant, **{**overrides, "data": data})
    for spec, what in ((data, "--data"), (test_data, "--test-data")):
        if not spec:
            continue
        source, path = parse_spec(spec)
        if path is not None and not Path(path).exists():
            raise FileNotFoundError(f"{what} {spec!r}: {path} does not exist (see docs/data.md)")
        missing = missing_files(spec)
        if missing:
            raise FileNotFoundError(f"{what} {missing}")
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


def notebook_key(source: Path, params: dict) -> str:
    """What an executed notebook depends on: its source, its parameters and the kit's code."""
    package = Path(__file__).resolve().parents[1]
    runner_files = sorted(f for d in ("experiments", "reproduce") for f in (package / d).glob("*.py"))
    return stable_hash({"source": hashlib.sha256(source.read_bytes()).hexdigest() if source.exists() else None,
                  "params": {k: v for k, v in params.items() if k not in ("force_token", "compute")},
                  "code": code_version(),
                  "runner": [hashlib.sha256(f.read_bytes()).hexdigest() for f in runner_files]})


def _rows_finished(out: Path, tables) -> bool:
    """Every row of ``tables`` has a finished (seed 0) result file in ``out/rows``."""
    return all(row_file(out / "rows", t, r, 0).exists() for t in tables for r in ex.get_table(t).row_ids)


def _first_line(source) -> str:
    lines = [s for s in (source or "").splitlines() if s.strip() and not s.startswith("#")]
    return lines[0][:120] if lines else ""


def _merge(old: list, new: list) -> list:
    """Records of ``new`` replace those of ``old`` with the same identity; the rest of ``old`` is kept."""
    def ident(r):
        return (r.get("table"), r.get("row"), r.get("metric"), r.get("seed"), r.get("profile"), r.get("variant"),
                r.get("user_data", r.get("data")), json.dumps(r.get("overrides") or {}, sort_keys=True),
                r.get("test_data") if r.get("table") == "T2" else None)
    merged = {ident(r): r for r in old}
    merged.update({ident(r): r for r in new})
    return list(merged.values())


def read_run_results(path: Path) -> dict:
    if path.exists():
        try:
            data = json.loads(path.read_text())
            if isinstance(data, dict) and isinstance(data.get("records"), list):
                return data
        except ValueError:
            pass
    return {"format": RESULTS_FORMAT, "records": [], "claims": [], "notebooks": [], "runs": []}


def write_run_results(out: Path, new_records: list, claims=None, notebooks=None, run=None) -> dict:
    path = out / "results.json"
    data = read_run_results(path)
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
    data["updated"] = utc_now()
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
    check_inputs(profile, variant, overrides, data, test_data, device)
    tables = ex.parse_only(only)
    out = Path(out or f"runs/reproduce-{profile}").resolve()
    cache = Path(cache_dir).resolve() if cache_dir else out / "cache"
    nb_dir = Path(notebooks_dir) if notebooks_dir else NOTEBOOKS_DIR
    n_seeds = seeds if seeds is not None else ex.PROFILE_SEEDS[profile]
    if n_seeds < 1:
        raise ValueError(f"--seeds: expected a positive number, got {n_seeds}")
    token = uuid.uuid4().hex if force else ""
    t_start = time.time()
    run = {"id": uuid.uuid4().hex[:12], "started": utc_now(), "profile": profile, "variant": variant, "data": data,
           "test_data": test_data, "device": device, "tables": tables, "seeds": n_seeds, "overrides": overrides,
           "force": force, "itespy": __version__, "code_version": code_version(), "pid": os.getpid()}
    run.update(executor=executor, parallel_jobs=jobs, threads=threads, recipe=_recipe(profile, variant, overrides))
    settings = scheduler.row_settings(profile, data, device, out, cache, overrides, variant, test_data, token)

    def compute_rows(items):
        """The scheduler's pass over ``items`` (table, row, seed) before the notebooks collect them."""
        if scheduled:
            scheduler.run_rows(items, settings, executor, jobs, retries, out / "jobs", slurm, poll, log, progress,
                               threads)

    from ..devices import torch_threads  # torch is imported only when a run starts
    with OutLock(out), torch_threads(threads):
        statuses = []
        compute_rows([(t, r, 0) for t in tables for r in ex.get_table(t).row_ids])
        earlier = {n["notebook"]: n for n in read_run_results(out / "results.json").get("notebooks", [])}
        for stem, nb_tables in ex.NOTEBOOKS.items():
            selected = [t for t in nb_tables if t in tables]
            if not selected:
                continue
            params = {"profile": profile, "data": data, "device": device, "seed": 0, "out_dir": str(out),
                      "cache_dir": str(cache), "tables": selected, "rows": [], "overrides": overrides,
                      "variant": variant, "test_data": test_data or "", "force_token": token,
                      "figures_dir": str(out / "figures" / stem), "compute": not scheduled,
                      "results": ""}  # train and evaluate the rows (the chapters default to the published run)
            source = nb_dir / f"{stem}.ipynb"
            key = notebook_key(source, params)
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
                log(f"  FAILED: {failure_text(status)}")
            write_run_results(out, load_records(out), notebooks=statuses, run=run)

        # More seeds for every row of the claims whose comparison is close (a claim compares its rows on the
        # seeds they all have). Averaging over seeds can make other comparisons close: repeat until no new row
        # is close (at most SEED_PASSES times).
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
                    write_run_results(out, run_table(table_id, profile, data, device, seed, out, cache, overrides,
                                                  variant, test_data, token, [row_id], log=log,
                                                  compute=not scheduled))
            records = select_records(load_records(out), profile, data, variant, overrides, test_data)

        values = ex.aggregate(records)
        claims = ex.add_seed_verdicts(ex.evaluate_claims(values, tables), values)
        run["flat_baseline"] = flat_baseline(profile, data, variant, overrides)
        figures = write_figures(out, tables, values, profile, report_figures_dir)
        run.update(finished=utc_now(), seconds=round(time.time() - t_start, 1))
        if scheduled:
            run["tasks"] = scheduler.state_summary(out / "jobs" / "state.json")
        results = write_run_results(out, load_records(out), claims=claims, notebooks=statuses, run=run)
        same = [r for r in results["runs"] if r.get("profile") == profile and r.get("data") == data]
        run["all_runs"] = {"runs": len(same), "seconds": round(sum(r.get("seconds") or 0.0 for r in same), 1)}
        report = report_markdown(tables, values, claims, statuses, run, figures, out)
        atomic_write_text(out / "REPORT.md", report)
    failed = [s for s in statuses if s["status"] != "ok"]
    log(f"wrote {out / 'results.json'} and {out / 'REPORT.md'} in {run['seconds']:.0f} s"
        + (f"; {len(failed)} notebook(s) failed" if failed else ""))
    return {"out": str(out), "records": results["records"], "claims": claims, "notebooks": statuses,
            "seconds": run["seconds"], "failed": failed}


RECIPE_FIELDS = ("max_train", "max_test", "teacher_epochs", "student_epochs", "batch_size", "optimizer", "lr",
                 "student_optimizer", "ric_rotation", "rec_rotation", "loss_norm", "kd_norm", "cycle_copies",
                 "lambda_hand", "rec_copies", "student_lr_decay_every", "student_weight_decay", "student_lr")


def _recipe(profile: str, variant: str, overrides: dict | None) -> dict:
    """The default row's sizes and recipe, kept with the run: the report and the chapters describe the run
    that was made, not today's defaults."""
    cfg = ex.row_config("T1", "ites_ts_gt", profile, "synthetic", 0, "cpu", variant, overrides or {})
    return {k: getattr(cfg, k) for k in RECIPE_FIELDS}


def flat_baseline(profile: str, data: str, variant: str = "paper", overrides: dict | None = None):
    """MPJPE / P-MPJPE of the flat pose (all joints at the root's depth) on the test split the GT rows use;
    None when the data cannot be loaded or the kit has no such baseline."""
    try:
        from ..evaluate import evaluate_flat_baseline
        spec, _ = ex.row_data(ex.TABLES["T3"].row("all"), data)
        cfg = make_config(profile, variant, **{**(overrides or {}), "data": spec})
        metrics = evaluate_flat_baseline(load_row_splits(cfg)["test"], protocols=("mpjpe_scaled_flip", "p_mpjpe_flip"))
    except Exception:  # noqa: BLE001 -- a courtesy line in the report, never a reason to fail
        return None
    return {m: metrics[ex.METRICS[m].protocol]["mean"] for m in ("MPJPE", "P-MPJPE")}


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



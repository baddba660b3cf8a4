"""The chapters of the book: which notebooks, with which parameters, executed through papermill exactly as
``reproduce`` executes its notebooks (:func:`itespy.reproduce.runner.execute_notebook`), and re-used while
nothing they depend on changed."""
from __future__ import annotations

import json
import os
from pathlib import Path

from .. import __version__
from .. import experiments as ex
from ..config import PROFILES
from ..io import atomic_write_json, utc_now
from ..reproduce.jobs import code_version
from ..reproduce.paths import NOTEBOOKS_DIR, REPO
from ..reproduce.published import PUBLISHED_TUTORIAL
from ..reproduce.runner import notebook_key, execute_notebook

TEACHER_CHAPTER = "03_teacher"  # chapter 04 reuses the teacher this chapter trained
SIZED = ("max_train", "teacher_epochs", "student_epochs")  # chapter 00's small defaults; None: the profile's
STATE = "book-state.json"


def chapter_stems(notebooks_dir=None) -> list:
    """The course's notebooks in reading order: ``00_tour`` ... ``09_your_keypoints``."""
    return sorted(p.stem for p in Path(notebooks_dir or NOTEBOOKS_DIR).glob("[0-9][0-9]*_*.ipynb"))


def declared_parameters(source: Path) -> dict:
    """{name: default as written} of the notebook's ``parameters`` cell (papermill's own reading of it)."""
    import papermill as pm
    return {name: info["default"] for name, info in pm.inspect_notebook(str(source)).items()}


def _notebook_path(path: Path, notebooks_dir: Path) -> str:
    """A path as the notebook (cwd: notebooks/) should see it: relative when inside the repository, so the
    executed copy shows no machine's absolute paths and runs again from a checkout."""
    path = path.resolve()
    try:
        path.relative_to(REPO)
    except ValueError:
        return str(path)
    return os.path.relpath(path, notebooks_dir.resolve())


def chapter_parameters(stem: str, declared, profile: str, data: str, device: str, quick: bool, work: Path,
                       cache: Path, threads: int | None = None, compute: bool = True,
                       notebooks_dir=None) -> dict:
    """What the book passes to one notebook (only names its ``parameters`` cell declares).

    ``quick``: keep each notebook's own small sizes (what CI's nbval runs: chapter 00's 1024 poses and
    2 + 2 epochs) and let the table chapters show the committed tutorial run; otherwise every chapter gets
    the profile's sizes and the table chapters train as ``reproduce`` runs them (``results=""``, no overrides)."""
    nb_dir = Path(notebooks_dir or NOTEBOOKS_DIR)
    where = lambda *parts: _notebook_path(work.joinpath(*parts), nb_dir)  # noqa: E731
    params = {"profile": profile, "data": data, "device": device, "seed": 0, "out_dir": where("runs", stem),
              "figures_dir": where("figures", stem), "teacher_run": where("runs", TEACHER_CHAPTER)}
    if threads:
        params["threads"] = threads
    if stem in ex.NOTEBOOKS:  # the table chapters: rows and their trainings shared through the cache
        params.update(out_dir=where("tables"), cache_dir=_notebook_path(cache, nb_dir), tables=list(ex.NOTEBOOKS[stem]),
                      rows=[], overrides=dict(ex.QUICK_OVERRIDES) if quick else {}, variant="paper", test_data="",
                      compute=compute)
        # quick: the committed tutorial run (results/tutorial), shown and not retrained; else train as reproduce does
        params["results"] = _notebook_path(PUBLISHED_TUTORIAL, nb_dir) if quick else ""
    elif not quick:
        params.update({k: None for k in SIZED})
    return {k: v for k, v in params.items() if k in declared}


def _read_state(work: Path) -> dict:
    try:
        state = json.loads((work / STATE).read_text())
        return state if isinstance(state, dict) else {}
    except (OSError, ValueError):
        return {}


def compute_table_rows(profile, data, device, quick, work: Path, cache: Path, jobs: int, threads, log) -> None:
    """``--jobs N``: every table row first, in N worker processes (reproduce's scheduler); the table
    chapters then only collect them."""
    from ..reproduce import scheduler
    overrides = dict(ex.QUICK_OVERRIDES) if quick else {}
    settings = scheduler.row_settings(profile, data, device, work / "tables", cache, overrides, "paper", None, "")
    items = [(t, r, 0) for t in ex.TABLE_IDS for r in ex.get_table(t).row_ids]
    log(f"table rows: {len(items)} in {jobs} worker processes")
    scheduler.run_rows(items, settings, "local", jobs, scheduler.DEFAULT_RETRIES, work / "tables" / "jobs", None, None,
                       log, False, threads)


def execute_chapters(profile: str = "smoke", data: str = "synthetic", device: str = "cpu", work=None, cache=None,
                     quick: bool | None = None, only=None, force: bool = False, timeout: int | None = None,
                     threads: int | None = None, jobs: int = 1, notebooks_dir=None, log=print) -> list:
    """Execute the chapters into ``WORK/executed/`` (a chapter whose notebook, parameters and code are
    unchanged since its last successful run is not executed again). Returns one record per chapter:
    ``{stem, source, executed, status, error, cell, seconds, reused, parameters, profile, data, quick,
    device, finished, itespy, code_version}``."""
    if profile not in PROFILES:
        raise ValueError(f"--profile: expected one of {PROFILES}, got {profile!r}")
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"--jobs: expected a positive number of workers, got {jobs!r}")
    from ..reproduce.runner import check_inputs
    check_inputs(profile, "paper", {}, data, None, device)
    quick = profile == "smoke" if quick is None else quick
    nb_dir = Path(notebooks_dir or NOTEBOOKS_DIR).resolve()
    work = Path(work or f"runs/book-{profile}").resolve()
    cache = Path(cache).resolve() if cache else work / "tables" / "cache"
    stems = chapter_stems(nb_dir)
    if only:
        wanted = [s.strip() for s in (only.split(",") if isinstance(only, str) else only)]
        unknown = [w for w in wanted if not any(s.startswith(w) for s in stems)]
        if unknown:
            raise ValueError(f"--only {', '.join(unknown)}: expected chapter numbers or names from {stems}")
        stems = [s for s in stems if any(s.startswith(w) for w in wanted)]
    work.mkdir(parents=True, exist_ok=True)
    compute = True
    if jobs > 1 and not quick and any(s in ex.NOTEBOOKS for s in stems):  # quick: the table chapters train nothing
        compute_table_rows(profile, data, device, quick, work, cache, jobs, threads, log)
        compute = False
    state = _read_state(work)
    records = []
    for stem in stems:
        source = nb_dir / f"{stem}.ipynb"
        params = chapter_parameters(stem, declared_parameters(source), profile, data, device, quick, work, cache,
                                    threads, compute, nb_dir)
        key = notebook_key(source, params)
        target = work / "executed" / f"{stem}.ipynb"
        previous = state.get(stem, {})
        if not force and previous.get("status") == "ok" and previous.get("key") == key and target.exists():
            log(f"chapter {stem}: up to date, not re-executed")
            records.append({**previous, "reused": True})
            continue
        log(f"chapter {stem}: executing ({profile}{', quick sizes' if quick else ''}, {data})")
        status = execute_notebook(source, target, params, timeout, threads)
        record = {"stem": stem, "source": f"notebooks/{stem}.ipynb", "executed": str(target), "key": key,
                  "status": status["status"], "error": status.get("error"), "cell": status.get("cell"),
                  "seconds": status["seconds"], "reused": False, "parameters": params, "profile": profile,
                  "data": data, "quick": quick, "device": device, "finished": utc_now(), "itespy": __version__,
                  "code_version": code_version()}
        log(f"  {'done' if record['status'] == 'ok' else 'FAILED: ' + str(record['error'])} "
            f"in {record['seconds']:.0f} s")
        records.append(record)
        state[stem] = record
        atomic_write_json(work / STATE, state)
    return records


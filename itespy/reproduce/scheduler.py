"""Run the rows of ``itespy reproduce`` in parallel: worker processes on one machine, or Slurm jobs.

The unit of work is a *task*: the rows (``table, row, seed``) it computes, in order, and the tasks it needs.
Rows that share a teacher need it trained once, first: :func:`plan` makes one teacher task per distinct
teacher (it also evaluates the teacher rows of that teacher), and every student row with L_KD becomes a task
that needs it. Rows already finished in ``OUT/rows`` are not planned; rows that train nothing (cost rows,
rows skipped for lack of data) are left to the notebooks.

Backends (``--executor``):

* ``local`` -- ``--jobs N`` worker processes on this machine. With GPUs, worker *i* is pinned to GPU
  *i mod #GPUs* (``CUDA_VISIBLE_DEVICES``); on CPU each worker gets ``#cores / N`` torch threads.
* ``slurm`` -- one Slurm job per task through ``submitit``; job ids are kept in ``OUT/jobs/state.json`` so a
  re-invoked runner waits for jobs still queued or running instead of resubmitting them, and collects those
  that finished meanwhile. A pre-empted or timed-out job is requeued by submitit (training resumes from its
  epoch checkpoints); a failed one is resubmitted up to ``--retries`` times, then reported by row.
* ``submitit-local`` -- the Slurm path with submitit's local executor: the same bookkeeping, no cluster
  (for tests, and to try the Slurm path on a workstation).

Every task writes its rows' results to ``OUT/rows`` and its models to the cache exactly as the serial runner
does (same files, same cache keys), so results do not depend on which backend ran them or in what order.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ..io import atomic_write_json, utc_now
from .backends import NO_RETRY, LocalBackend, SubmititBackend
from .jobs import code_version
from .rows import row_file, error_records
from .tasks import Task, execute_task, plan, plan_text, row_settings  # noqa: F401 -- re-exported

EXECUTORS = ("local", "slurm", "submitit-local")
DEFAULT_RETRIES = 2
POLL_S = {"local": 0.5, "submitit-local": 1.0, "slurm": 30.0}

# ----------------------------------------------------------------------------------------------------
# The scheduling loop
# ----------------------------------------------------------------------------------------------------


def run_tasks(tasks: list, backend, state_path: Path, retries: int = DEFAULT_RETRIES, max_running: int = 0,
              poll: float | None = None, log=print, progress: bool = True) -> dict:
    """Submit every task once the tasks it needs are done, wait, retry failures up to ``retries`` times.
    Returns {task id: ("ok" | "failed", message)}. ``state_path`` keeps job ids across runner restarts."""
    from tqdm.auto import tqdm

    poll = POLL_S[backend.name] if poll is None else poll
    state = _read_state(state_path)
    by_id = {t.id: t for t in tasks}
    handles, results, attempts = {}, {}, {}
    for t in tasks:  # re-attach to jobs an earlier runner submitted
        entry = state.get(t.id) or {}
        if entry.get("status") == "submitted" and entry.get("job_id") and entry.get("executor") == backend.name:
            handles[t.id] = backend.attach(entry["job_id"])
            attempts[t.id] = entry.get("attempts", 1)
            log(f"{t.label}: job {entry['job_id']} submitted by an earlier run; waiting for it")

    def save(tid, **kw):
        state[tid] = {**state.get(tid, {}), **kw, "executor": backend.name, "updated": utc_now()}
        atomic_write_json(state_path, state)

    n_rows = sum(len(t.rows) for t in tasks)
    bar = tqdm(total=n_rows, unit="row", desc="rows", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    try:
        while len(results) < len(tasks):
            for t in tasks:
                if t.id in results or t.id in handles:
                    continue
                failed = [n for n in t.needs if results.get(n, ("",))[0] == "failed"]
                if failed:
                    results[t.id] = ("failed", f"not run: it needs {failed[0]}, which failed: "
                                                f"{results[failed[0]][1]}")
                    save(t.id, status="failed", message=results[t.id][1])
                    continue
                if not all(results.get(n, ("",))[0] == "ok" or n not in by_id for n in t.needs):
                    continue
                if max_running and len(handles) >= max_running:
                    break
                handles[t.id] = backend.submit(t)
                attempts[t.id] = attempts.get(t.id, 0) + 1
                job_id = backend.job_id(handles[t.id])
                save(t.id, status="submitted", job_id=job_id, attempts=attempts[t.id], rows=t.rows)
                log(f"submitted {t.label}" + (f" as job {job_id}" if job_id else "")
                    + (f" (attempt {attempts[t.id]})" if attempts[t.id] > 1 else ""))
            for tid, handle in list(handles.items()):
                status, message = backend.poll(handle)
                if status == "running":
                    continue
                del handles[tid]
                task = by_id[tid]
                if status == "ok":  # message: execute_task's summary
                    results[tid] = ("ok", message)
                    save(tid, status="done", seconds=message["seconds"], host=message["host"],
                         device=message["device"],  # total_seconds: over every run of this task
                         total_seconds=round(state.get(tid, {}).get("total_seconds", 0.0) + message["seconds"], 3))
                    bar.update(len(task.rows))
                    log(f"finished {task.label} in {message['seconds']:.0f} s on {message['host']} "
                        f"({message['device']})")
                    for line in message["lines"]:
                        log(f"  {line}")
                elif attempts[tid] <= retries and not message.startswith(NO_RETRY):
                    log(f"{task.label}: failed (attempt {attempts[tid]} of {retries + 1}), resubmitting: {message}")
                    save(tid, status="retrying", message=message)
                else:
                    results[tid] = ("failed", f"{message} (after {attempts[tid]} attempt(s))")
                    save(tid, status="failed", message=results[tid][1])
                    bar.update(len(task.rows))
                    log(f"{task.label}: FAILED after {attempts[tid]} attempt(s): {message}")
            if len(results) < len(tasks):
                time.sleep(poll)
    finally:
        bar.close()
    return results


def state_summary(path) -> dict | None:
    """Totals of a run's ``jobs/state.json``: tasks done / failed, worker seconds in all, the longest task."""
    state = _read_state(path)
    if not state:
        return None
    seconds = [e.get("total_seconds", e.get("seconds")) or 0.0 for e in state.values() if e.get("status") == "done"]
    return {"done": len(seconds), "failed": sum(e.get("status") == "failed" for e in state.values()),
            "seconds": round(sum(seconds), 1), "longest": max(seconds, default=0.0)}


def _settle_finished_jobs(state_path: Path, planned: set, log=print) -> None:
    """A job an earlier (killed) runner submitted may have finished before this runner planned: its task is no
    longer planned (its result is on disk), so mark it done instead of leaving it 'submitted' for ever."""
    state = _read_state(state_path)
    settled = [tid for tid, e in state.items() if e.get("status") == "submitted" and tid not in planned]
    for tid in settled:
        state[tid] = {**state[tid], "status": "done", "updated": utc_now(),
                      "note": "finished after the runner that submitted it had stopped"}
        log(f"{tid}: job {state[tid].get('job_id')} submitted by an earlier run has finished meanwhile")
    if settled:
        atomic_write_json(state_path, state)


def _read_state(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def run_rows(items, settings: dict, executor: str = "local", jobs: int = 1, retries: int = DEFAULT_RETRIES,
             state_dir=None, slurm: dict | None = None, poll: float | None = None, log=print,
             progress: bool = True, threads: int | None = None) -> dict:
    """Compute the ``(table, row, seed)`` items with a backend; rows whose task failed get error records in
    ``rows/<table>/<row>/seed<k>.error.json`` naming the job. Returns {task id: (status, message)}."""
    if executor not in EXECUTORS:
        raise ValueError(f"--executor: expected one of {EXECUTORS}, got {executor!r}")
    if jobs < 1:
        raise ValueError(f"--jobs: expected a positive number of workers, got {jobs}")
    state_dir = Path(state_dir or Path(settings["rows_dir"]).parent / "jobs")
    tasks = plan(items, settings)
    _settle_finished_jobs(state_dir / "state.json", {t.id for t in tasks}, log)
    if not tasks:
        return {}
    n_rows = sum(len(t.rows) for t in tasks)
    log(f"{executor}: {len(tasks)} task(s) for {n_rows} row(s) "
        f"({sum(1 for t in tasks if t.teacher_of)} teacher training(s) first, the rows that need them after)")
    version = code_version()
    if executor == "local":
        backend = LocalBackend(jobs, settings, version, log, threads)
        max_running = jobs  # hand a worker its next task only when it is free: the priority order decides
    else:
        backend = SubmititBackend(state_dir / "submitit", "slurm" if executor == "slurm" else "local", settings,
                                  version, settings["profile"], log=log, threads=threads, **(slurm or {}))
        max_running = jobs if jobs > 1 else 0
    try:
        results = run_tasks(tasks, backend, state_dir / "state.json", retries, max_running, poll, log, progress)
    except BaseException:  # Ctrl-C or a runner error: stop local workers; Slurm jobs go on
        backend.close(abort=True)
        if executor != "local":
            log(f"runner stopped: submitted jobs keep running; run the same command again to collect them "
                f"(job ids: {state_dir / 'state.json'})")
        raise
    backend.close()
    by_id = {t.id: t for t in tasks}
    s = settings
    for tid, (status, message) in results.items():
        if status == "ok":
            continue
        for table_id, row_id, seed in by_id[tid].rows or []:
            recs = error_records(table_id, row_id, seed, s["profile"], s["data"], RuntimeError(message),
                                    variant=s["variant"], overrides=s["overrides"], user_data=s["data"],
                                    test_data=s["test_data"], executor=executor)
            atomic_write_json(row_file(s["rows_dir"], table_id, row_id, seed).with_name(f"seed{seed}.error.json"),
                              {"records": recs})
    return results

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
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import experiments as ex
from . import reproduce as rp
from .io import atomic_write_json

EXECUTORS = ("local", "slurm", "submitit-local")
DEFAULT_RETRIES = 2
POLL_S = {"local": 0.5, "submitit-local": 1.0, "slurm": 30.0}
# Slurm defaults per profile: (minutes per job, GB of memory, CPUs per job). The paper profile's time
# is the largest row's estimate (docs/cluster.md) with a safety factor; pre-empted jobs resume anyway.
SLURM_DEFAULTS = {"smoke": (30, 8, 2), "tutorial": (120, 16, 4), "paper": (24 * 60, 64, 8)}


@dataclass
class Task:
    """Rows computed in one process, after the teacher of ``teacher_of`` (a row id triple) is trained."""
    id: str
    rows: list = field(default_factory=list)
    needs: tuple = ()
    teacher_of: tuple | None = None

    @property
    def label(self) -> str:
        rows = ", ".join(f"{t}:{r}" + (f" (seed {s})" if s else "") for t, r, s in self.rows)
        return f"{self.id[:16]} [{rows}]" if rows else self.id[:16]


def row_settings(profile="smoke", data="synthetic", device="auto", out=None, cache_dir=None, overrides=None,
                 variant="paper", test_data=None, force_token="") -> dict:
    """The keyword arguments of :func:`itespy.reproduce.run_row` shared by every row of one run."""
    out = Path(out)
    return {"profile": profile, "data": data, "device": device, "cache_dir": str(cache_dir or out / "cache"),
            "rows_dir": str(out / "rows"), "overrides": dict(overrides or {}), "variant": variant,
            "test_data": test_data or None, "force_token": force_token}


def plan(items, settings: dict) -> list:
    """Tasks for the ``(table, row, seed)`` items that still need computing, in priority order."""
    s = settings
    teachers, students = {}, {}
    for table_id, row_id, seed in items:
        if not rp.row_trains(table_id, row_id, s["data"]) or rp.row_finished(
                table_id, row_id, seed, s["rows_dir"], s["profile"], s["data"], s["device"], s["overrides"],
                s["variant"], s["test_data"], s["force_token"]):
            continue
        # task ids are the cache job names: rows with the same model (T1 ITES-TS, T3 all ...) share a task
        tid, sid = rp.row_jobs(table_id, row_id, s["profile"], s["data"], s["device"], s["variant"],
                               s["overrides"], seed)
        if tid:
            teacher = teachers.setdefault(tid, Task(tid, teacher_of=(table_id, row_id, seed)))
            if sid is None:
                teacher.rows.append((table_id, row_id, seed))
                continue
        students.setdefault(sid, Task(sid, needs=(tid,) if tid else ())).rows.append((table_id, row_id, seed))
    done = {tid for tid, t in teachers.items()
            if not t.rows and rp._done(Path(s["cache_dir"]) / tid, s["force_token"])}
    for task in students.values():
        task.needs = tuple(n for n in task.needs if n not in done)
    # Priority order (a free worker takes the first ready task): teachers that students wait for (most
    # waiting first), then the students, then teachers nobody waits for. Students, the longest trainings,
    # thus start as soon as their teacher is done instead of queueing behind every other teacher.
    waiting = {tid: sum(tid in t.needs for t in students.values()) for tid in teachers}
    left = sorted((t for tid, t in teachers.items() if tid not in done), key=lambda t: -waiting[t.id])
    return ([t for t in left if waiting[t.id]] + list(students.values())
            + [t for t in left if not waiting[t.id]])


def plan_text(tasks: list) -> str:
    """The plan as text: one line per task in priority order, with the rows it computes and what it waits for."""
    if not tasks:
        return "nothing to train: every selected row is finished (or trains nothing)"
    n_rows = sum(len(t.rows) for t in tasks)
    lines = [f"{len(tasks)} training(s) for {n_rows} row(s), in priority order:"]
    for i, t in enumerate(tasks, 1):
        rows = ", ".join(f"{a}:{b}" + (f" (seed {c})" if c else "") for a, b, c in t.rows) or "(no row of its own)"
        lines.append(f"{i:3d}. {t.id}  {rows}" + (f"  <- waits for {', '.join(t.needs)}" if t.needs else ""))
    return "\n".join(lines)


def execute_task(task: Task, settings: dict, code_version: str | None = None, threads: int | None = None) -> dict:
    """Run one task in this process (what a worker or a Slurm job does).
    Returns {'lines': one line per row, 'seconds': wall time, 'host', 'device'}."""
    import socket
    t_start = time.time()
    if code_version:
        os.environ["ITESPY_CODE_VERSION"] = code_version  # the runner's version, even if sources change meanwhile
    if threads:
        import torch
        torch.set_num_threads(threads)
    s = dict(settings)
    if task.teacher_of:
        t, r, seed = task.teacher_of
        cfg = ex.row_config(t, r, s["profile"], s["data"], seed, s["device"], s["variant"], s["overrides"])
        rp.ensure_teacher(cfg, s["cache_dir"], s["force_token"])
    lines = []
    for table_id, row_id, seed in task.rows:
        t0 = time.time()
        recs = rp.run_row(table_id, row_id, seed=seed, **s)
        lines.append(rp._row_line(recs, time.time() - t0))
    device = "cpu"
    if s["device"] != "cpu":
        import torch
        if torch.cuda.is_available():
            device = torch.cuda.get_device_name(torch.cuda.current_device())
    return {"lines": lines, "seconds": round(time.time() - t_start, 3), "host": socket.gethostname(), "device": device}


# ----------------------------------------------------------------------------------------------------
# Backends: submit(task) -> handle; poll(handle) -> ("running" | "ok" | "failed", message)
# ----------------------------------------------------------------------------------------------------


def _init_worker(gpu_queue, threads: int, code_version: str) -> None:
    os.environ["ITESPY_CODE_VERSION"] = code_version
    if gpu_queue is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu_queue.get())  # before this process first imports torch
    import torch
    torch.set_num_threads(threads)


def visible_gpus(device: str) -> list:
    """GPU indices the local workers are spread over ([] on CPU or with an explicit device such as cuda:1)."""
    if device not in ("auto", "cuda"):
        return []
    import torch
    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []


def worker_threads(jobs: int, threads: int | None = None) -> int:
    """Torch threads per local worker: ``threads`` (``--threads``), else ``OMP_NUM_THREADS``, else the cores
    shared out evenly. Results are bit-identical to a serial run with the same number of threads; another
    thread count changes the order of floating-point sums, and short trainings amplify that (docs/cluster.md)."""
    if threads:
        return threads
    try:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    except (KeyError, ValueError):
        return max(1, (os.cpu_count() or 1) // jobs)


def worker_gpus(jobs: int, gpus: list) -> list:
    """The GPU of each of ``jobs`` workers: worker i gets gpus[i % len(gpus)]."""
    return [gpus[i % len(gpus)] for i in range(jobs)] if gpus else []


class LocalBackend:
    """``jobs`` worker processes (spawned, so each imports torch fresh and can be pinned to one GPU)."""

    name = "local"

    def __init__(self, jobs: int, settings: dict, code_version: str, log=print, threads: int | None = None):
        self.jobs, self.settings, self.code_version, self.log = jobs, settings, code_version, log
        self.gpus = worker_gpus(jobs, visible_gpus(settings["device"]))
        self.threads = worker_threads(jobs, threads)
        self.pool = None
        if self.gpus:
            log(f"{jobs} worker(s) on GPU(s) {', '.join(map(str, self.gpus))}")
        else:
            log(f"{jobs} worker process(es) on CPU, {self.threads} torch thread(s) each")

    def _pool(self):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        if self.pool is None:
            ctx = multiprocessing.get_context("spawn")
            queue = None
            if self.gpus:
                queue = ctx.Queue()
                for g in self.gpus:
                    queue.put(g)
            self.pool = ProcessPoolExecutor(self.jobs, mp_context=ctx, initializer=_init_worker,
                                            initargs=(queue, self.threads, self.code_version))
        return self.pool

    def submit(self, task: Task):
        pool = self._pool()
        future = pool.submit(execute_task, task, self.settings)
        future.itespy_pool = pool
        return future

    def poll(self, future):
        from concurrent.futures.process import BrokenProcessPool
        if not future.done():
            return "running", ""
        exc = future.exception()
        if exc is None:
            return "ok", future.result()
        if isinstance(exc, BrokenProcessPool):  # a worker died (killed, out of memory): start a new pool
            if self.pool is not None and self.pool is getattr(future, "itespy_pool", None):
                self.pool.shutdown(wait=False, cancel_futures=True)
                self.pool = None
            return "failed", f"a worker process died ({exc})"
        return "failed", f"{type(exc).__name__}: {exc}"

    def job_id(self, handle):
        return None

    def attach(self, job_id):
        return None

    def close(self, abort: bool = False):
        """Wait for the workers to exit; ``abort`` (Ctrl-C) stops them mid-task (their trainings resume
        from the last epoch checkpoint on the next run)."""
        if self.pool is None:
            return
        if abort:
            for proc in list(getattr(self.pool, "_processes", {}).values()):
                proc.terminate()
        self.pool.shutdown(wait=True, cancel_futures=True)


def _task_call():
    """A submitit Checkpointable around :func:`execute_task`: on pre-emption or time-out submitit requeues the
    same call, and training resumes from its last epoch checkpoint in the shared cache."""
    import submitit

    class ITESTask(submitit.helpers.Checkpointable):
        def __call__(self, task, settings, code_version, threads):
            return execute_task(task, settings, code_version, threads)
    return ITESTask()


class SubmititBackend:
    """One Slurm job per task (``cluster="slurm"``), or submitit's local executor (``cluster="local"``)."""

    def __init__(self, folder: Path, cluster: str, settings: dict, code_version: str, profile: str,
                 partition=None, gpus=None, time_min=None, mem_gb=None, cpus=None, slurm_extra=None, log=print,
                 threads: int | None = None):
        import submitit
        self.name = "slurm" if cluster == "slurm" else "submitit-local"
        self.folder, self.cluster, self.settings, self.code_version = Path(folder), cluster, settings, code_version
        d_time, d_mem, d_cpus = SLURM_DEFAULTS.get(profile, SLURM_DEFAULTS["paper"])
        self.cpus = cpus or d_cpus
        self.threads = threads or self.cpus
        if gpus is None:
            gpus = 0 if (cluster != "slurm" or settings["device"] == "cpu") else 1
        self.executor = submitit.AutoExecutor(folder=str(self.folder / "%j"), cluster=cluster)
        params = {"name": "itespy", "timeout_min": int(time_min or d_time), "cpus_per_task": int(self.cpus),
                  "mem_gb": float(mem_gb or d_mem), "tasks_per_node": 1, "nodes": 1}
        if gpus:
            params["gpus_per_node"] = int(gpus)
        if cluster == "slurm":
            if partition:
                params["slurm_partition"] = partition
            if slurm_extra:
                params["slurm_additional_parameters"] = dict(slurm_extra)
        self.executor.update_parameters(**params)
        log(f"{self.name}: jobs of {params['timeout_min']} min, {params.get('gpus_per_node', 0)} GPU(s), "
            f"{params['cpus_per_task']} CPU(s), {params['mem_gb']:g} GB"
            + (f", partition {partition}" if partition else "") + f"; logs in {self.folder}")

    def submit(self, task: Task):
        return self.executor.submit(_task_call(), task, self.settings, self.code_version, self.threads)

    def job_id(self, job):
        return str(job.job_id)

    def attach(self, job_id: str):
        import submitit
        folder = self.folder / "%j"
        if self.cluster == "slurm":
            return submitit.SlurmJob(folder=folder, job_id=job_id)
        return submitit.LocalJob(folder=folder, job_id=job_id)

    def _running(self, job) -> bool:
        if job.paths.result_pickle.exists():
            return False
        if self.cluster != "slurm" and getattr(job, "_process", None) is None:
            return rp._pid_alive(int(job.job_id))  # a job of an earlier runner: its controller's pid
        return not job.done()

    def poll(self, job):
        if self._running(job):
            return "running", ""
        try:
            exc = job.exception()
        except Exception as err:  # noqa: BLE001 -- UncompletedJobError: ended without a result (killed, lost)
            return "failed", f"job {job.job_id} ended without a result: {_first_lines(str(err))}"
        if exc is None:
            return "ok", job.result()
        return "failed", f"job {job.job_id}: {_first_lines(str(exc), last=True)} (log: {job.paths.stderr})"

    def close(self, abort: bool = False):
        pass  # jobs outlive the runner on purpose: the next run collects them


def _first_lines(text: str, n: int = 3, last: bool = False) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-n:] if last else lines[:n])


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
        state[tid] = {**state.get(tid, {}), **kw, "executor": backend.name, "updated": rp._now()}
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
                elif attempts[tid] <= retries:
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
    tasks = plan(items, settings)
    if not tasks:
        return {}
    n_rows = sum(len(t.rows) for t in tasks)
    log(f"{executor}: {len(tasks)} task(s) for {n_rows} row(s) "
        f"({sum(1 for t in tasks if t.teacher_of)} teacher training(s) first, the rows that need them after)")
    state_dir = Path(state_dir or Path(settings["rows_dir"]).parent / "jobs")
    version = rp.code_version()
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
            recs = rp.error_records(table_id, row_id, seed, s["profile"], s["data"], RuntimeError(message),
                                    variant=s["variant"], overrides=s["overrides"], user_data=s["data"],
                                    test_data=s["test_data"], executor=executor)
            atomic_write_json(rp._row_file(s["rows_dir"], table_id, row_id, seed).with_name(f"seed{seed}.error.json"),
                              {"records": recs})
    return results

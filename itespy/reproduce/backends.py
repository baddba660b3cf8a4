"""Backends of the scheduler: ``submit(task) -> handle``, ``poll(handle) -> ("running" | "ok" | "failed",
message)``. :class:`LocalBackend` runs tasks in worker processes on this machine, :class:`SubmititBackend`
as Slurm jobs (or with submitit's local executor)."""
from __future__ import annotations

import os
import time
from pathlib import Path

from . import slurm
from .locks import pid_alive
from .tasks import Task, execute_task


# A failure that a retry would only repeat (its data is missing or bad): reported at once, not resubmitted.
NO_RETRY = "not retried (the same input would fail again): "
UNFIXABLE = ("DataError", "DataNotFoundError", "FileNotFoundError", "CheckpointError")


def unfixable(exc) -> bool:
    """Whether a task's exception (or, from a Slurm job, its text) is one no retry can fix."""
    if isinstance(exc, BaseException):
        return any(b.__name__ in UNFIXABLE for b in type(exc).__mro__)
    return any(f"{name}:" in str(exc) for name in UNFIXABLE)


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
        return "failed", (NO_RETRY if unfixable(exc) else "") + f"{type(exc).__name__}: {exc}"

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

    STATES_MAX_AGE_S = 1.0  # squeue is asked at most once per polling round, for every job being waited for

    def __init__(self, folder: Path, cluster: str, settings: dict, code_version: str, profile: str,
                 partition=None, gpus=None, time_min=None, mem_gb=None, cpus=None, slurm_extra=None, log=print,
                 threads: int | None = None):
        import submitit
        self.name = "slurm" if cluster == "slurm" else "submitit-local"
        self.folder, self.cluster, self.settings, self.code_version = Path(folder), cluster, settings, code_version
        params, text = slurm.request(profile, settings["device"], cluster, partition, gpus, time_min, mem_gb, cpus,
                                     slurm_extra)
        self.cpus = params["cpus_per_task"]
        self.threads = threads or self.cpus
        self.executor = submitit.AutoExecutor(folder=str(self.folder / "%j"), cluster=cluster)
        self.executor.update_parameters(**params)
        self._watch, self._states, self._asked, self._asked_at, self._ended = set(), {}, set(), 0.0, {}
        log(f"{self.name}: {text}; logs in {self.folder}")

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
        if getattr(job, "_process", None) is None:
            return pid_alive(int(job.job_id))  # a job of an earlier runner: its controller's pid
        return not job.done()

    def _slurm_state(self, job_id: str):
        """The job's state from squeue/sacct, asked once per polling round for every job being waited for;
        "UNKNOWN" when Slurm could not be asked, None when Slurm no longer knows the job."""
        self._watch.add(job_id)
        if job_id not in self._asked or time.time() - self._asked_at > self.STATES_MAX_AGE_S:
            self._asked, self._asked_at = set(self._watch), time.time()
            self._states = slurm.job_states(self._watch)
        return "UNKNOWN" if self._states is None else self._states.get(job_id)

    def _slurm_end(self, job):
        """None while the job is queued or running (or may still deliver its result), else how it ended.
        Asks squeue rather than submitit (whose sacct calls fail on a cluster without accounting, so that a
        cancelled job would be waited for forever)."""
        job_id = str(job.job_id)
        state = self._slurm_state(job_id)
        if state in slurm.ACTIVE:
            self._ended.pop(job_id, None)
            return None
        if state in slurm.SETTLING and time.time() - self._ended.setdefault(job_id, time.time()) < slurm.GRACE_S:
            return None
        return state or "no longer known to Slurm"

    def poll(self, job):
        if self.cluster == "slurm":
            ended = None if job.paths.result_pickle.exists() else self._slurm_end(job)
            if ended is None and not job.paths.result_pickle.exists():
                return "running", ""
            self._watch.discard(str(job.job_id))
            if not job.paths.result_pickle.exists():  # checked again: the job may have written it meanwhile
                return "failed", f"job {job.job_id} ended without a result ({ended}; log: {job.paths.stderr})"
        elif self._running(job):
            return "running", ""
        try:
            exc = job.exception()
        except Exception as err:  # noqa: BLE001 -- UncompletedJobError: ended without a result (killed, lost)
            return "failed", f"job {job.job_id} ended without a result: {_first_lines(str(err))}"
        if exc is None:
            return "ok", job.result()
        text = _first_lines(str(exc), last=True)
        return "failed", (NO_RETRY if unfixable(text) else "") + f"job {job.job_id}: {text} (log: {job.paths.stderr})"

    def close(self, abort: bool = False):
        pass  # jobs outlive the runner on purpose: the next run collects them


def _first_lines(text: str, n: int = 3, last: bool = False) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-n:] if last else lines[:n])



"""Tasks: the unit of work of a parallel or Slurm run -- the rows (``table, row, seed``) one process
computes, in order, after the teacher it needs; :func:`plan` makes them and :func:`execute_task` runs one."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import experiments as ex
from .jobs import job_done, ensure_teacher
from .rows import row_line, row_finished, row_jobs, row_trains, run_row


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
        if not row_trains(table_id, row_id, s["data"]) or row_finished(
                table_id, row_id, seed, s["rows_dir"], s["profile"], s["data"], s["device"], s["overrides"],
                s["variant"], s["test_data"], s["force_token"]):
            continue
        # task ids are the cache job names: rows with the same model (T1 ITES-TS, T3 all ...) share a task
        tid, sid = row_jobs(table_id, row_id, s["profile"], s["data"], s["device"], s["variant"],
                               s["overrides"], seed)
        if tid:
            teacher = teachers.setdefault(tid, Task(tid, teacher_of=(table_id, row_id, seed)))
            if sid is None:
                teacher.rows.append((table_id, row_id, seed))
                continue
        students.setdefault(sid, Task(sid, needs=(tid,) if tid else ())).rows.append((table_id, row_id, seed))
    done = {tid for tid, t in teachers.items()
            if not t.rows and job_done(Path(s["cache_dir"]) / tid, s["force_token"])}
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
        ensure_teacher(cfg, s["cache_dir"], s["force_token"])
    lines = []
    for table_id, row_id, seed in task.rows:
        t0 = time.time()
        recs = run_row(table_id, row_id, seed=seed, **s)
        lines.append(row_line(recs, time.time() - t0))
    device = "cpu"
    if s["device"] != "cpu":
        import torch
        if torch.cuda.is_available():
            device = torch.cuda.get_device_name(torch.cuda.current_device())
    return {"lines": lines, "seconds": round(time.time() - t_start, 3), "host": socket.gethostname(), "device": device}



"""Locks: one worker trains a cached job at a time (a heartbeat file lock that goes stale when its worker
dies), and one run writes into an output folder (`OUT/.lock`)."""
from __future__ import annotations

import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path

from ..io import utc_now

class ReproduceLockedError(RuntimeError):
    """Another reproduce run is writing into the same output directory."""



# A job lock is refreshed (its mtime touched) every LOCK_HEARTBEAT_S by the worker holding it; a lock not
# refreshed for LOCK_STALE_S is stale (its worker died, e.g. a pre-empted Slurm job on another node).
LOCK_HEARTBEAT_S = 30.0
LOCK_STALE_S = 600.0


def pid_alive(pid: int) -> bool:
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
    if info.get("host") == socket.gethostname() and isinstance(info.get("pid"), int) and not pid_alive(info["pid"]):
        return True
    try:
        return stale_after > 0 and time.time() - path.stat().st_mtime > stale_after
    except FileNotFoundError:
        return True


def try_lock(path: Path, stale_after: float = 0.0) -> bool:
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
            json.dump({"pid": os.getpid(), "host": socket.gethostname(), "started": utc_now()}, fh)
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
def job_lock(path: Path, poll: float = 2.0, log=None, stale_after: float | None = None,
              heartbeat: float | None = None):
    """Wait until no other worker trains this job, then hold its lock (refreshed by a heartbeat, so that a
    worker on another node can tell a live lock from one its dead holder left behind)."""
    stale_after = LOCK_STALE_S if stale_after is None else stale_after
    path.parent.mkdir(parents=True, exist_ok=True)
    said = False
    while not try_lock(path, stale_after):
        if log and not said:
            log(f"  waiting for {path.name} (another worker is training it: {_read_lock(path)})")
            said = True
        time.sleep(poll)
    try:
        with _heartbeat(path, LOCK_HEARTBEAT_S if heartbeat is None else heartbeat):
            yield
    finally:
        path.unlink(missing_ok=True)


class OutLock:
    """``OUT/.lock`` with our pid while a run writes into ``OUT``; a second run is refused."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.path = self.out / ".lock"
        self.held = False

    def __enter__(self):
        self.out.mkdir(parents=True, exist_ok=True)
        if not try_lock(self.path):
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



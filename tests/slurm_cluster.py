"""A throw-away single-node Slurm for tests/test_slurm.py (and to try the Slurm path by hand, docs/cluster.md).

Everything lives under one directory: a munge key, ``munged`` with its own socket, pid, seed and log files,
and a ``slurm.conf`` naming this host as controller and only node (free ports, its own state, spool, pid and
log files, ``AuthInfo=socket=`` pointing Slurm at that munge socket). ``slurmctld -D`` and ``slurmd -D`` run
in the foreground as children of the test, so they are stopped by their own process ids. The client commands
(sbatch, squeue, scancel, scontrol, sinfo) find the cluster through ``SLURM_CONF`` in :attr:`SlurmCluster.env`.

There is no accounting database (slurmdbd), so ``sacct`` has nothing to report: every ended job is recorded
by ``JobCompType=jobcomp/filetxt`` in ``jobcomp.log`` (:meth:`SlurmCluster.ended_jobs`), and ``MinJobAge``
keeps ended jobs visible to ``squeue``/``scontrol`` for an hour.

Every process of the cluster, and of the jobs it runs, carries ``ITESPY_TEST_SLURM=<directory>`` in its
environment: :meth:`SlurmCluster.stop` cancels the jobs, stops the daemons, then looks for such processes
(``/proc/*/environ``), kills any it finds by pid and returns them, so a test can assert that none was left.
"""
from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

BINARIES = ("munged", "slurmctld", "slurmd", "slurmstepd", "sbatch", "srun", "squeue", "scancel", "scontrol", "sinfo")
MARKER = "ITESPY_TEST_SLURM"


def missing() -> str | None:
    """Why a throw-away cluster cannot run here (None when it can)."""
    absent = [b for b in BINARIES if not shutil.which(b) and not Path("/usr/sbin", b).exists()]
    if absent:
        return (f"Slurm/munge binaries not found ({', '.join(absent)}); Debian: apt-get install -y "
                "--no-install-recommends slurmctld slurmd slurm-client munge (.ci/run installs them)")
    if os.geteuid() != 0:
        return "a throw-away Slurm needs root: slurmd starts each job as its user"
    return None


def _which(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def free_ports(n: int) -> list:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _mem_mb() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return 1024


class SlurmCluster:
    """``root``: an empty directory of its own (nothing is written elsewhere). ``cpus``: CPUs of the node."""

    def __init__(self, root, cpus: int | None = None, partition: str = "debug"):
        self.root = Path(root).resolve()
        self.cpus = cpus or max(2, os.cpu_count() or 1)
        self.partition = partition
        self.host = socket.gethostname().split(".")[0]
        self.conf = self.root / "slurm.conf"
        self.munge_socket = self.root / "munge" / "munge.socket"
        self.jobcomp = self.root / "jobcomp.log"
        self.procs: dict = {}  # name -> Popen
        self.env = {**os.environ, "SLURM_CONF": str(self.conf), MARKER: str(self.root)}
        for key in [k for k in self.env if k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SQUEUE_"))]:
            if key != "SLURM_CONF":  # an outer allocation's settings must not leak into this cluster
                del self.env[key]

    # ---------------------------------------------------------------------------------------------
    def write_config(self) -> None:
        for d in ("munge", "state", "spool", "log"):
            (self.root / d).mkdir(parents=True, exist_ok=True, mode=0o700)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        ctld_port, slurmd_port = free_ports(2)
        r = self.root
        self.conf.write_text(f"""\
# A throw-away single-node cluster (tests/slurm_cluster.py)
ClusterName=itespy-test
SlurmctldHost={self.host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser={getpass.getuser()}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={self.jobcomp}
MinJobAge=3600
ReturnToService=2
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
NodeName={self.host} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={_mem_mb()} State=UNKNOWN
PartitionName={self.partition} Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
""")

    def _start(self, name: str, argv: list) -> None:
        log = open(self.root / "log" / f"{name}.out", "ab")
        self.procs[name] = subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, cwd=self.root, start_new_session=True)
        log.close()

    def start(self, timeout: float = 60) -> "SlurmCluster":
        self.write_config()
        m = self.root / "munge"
        self._start("munged", [_which("munged"), "--foreground", "--force", f"--socket={self.munge_socket}",
                               f"--key-file={m / 'munge.key'}", f"--pid-file={m / 'munged.pid'}",
                               f"--seed-file={m / 'munged.seed'}", f"--log-file={m / 'munged.log'}"])
        self._wait(lambda: self.munge_socket.exists(), timeout, "munged to open its socket")
        self._start("slurmctld", [_which("slurmctld"), "-D", "-i", "-f", str(self.conf)])
        self._start("slurmd", [_which("slurmd"), "-D", "-f", str(self.conf), "-N", self.host])
        self._wait(lambda: self.node_state() == "idle", timeout, "the node to become idle (sinfo)")
        return self

    def _wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{', '.join(dead)} exited while waiting for {what}:\n{self.logs()}")
            if ready():
                return
            time.sleep(0.3)
        raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}:\n{self.logs()}")

    def logs(self, tail: int = 15) -> str:
        out = []
        for f in sorted((self.root / "log").glob("*")) + sorted((self.root / "munge").glob("*.log")):
            lines = f.read_text(errors="replace").splitlines()[-tail:]
            out.append(f"--- {f.name}\n" + "\n".join(lines))
        return "\n".join(out)

    # ---------------------------------------------------------------------------------------------
    def run(self, *argv, check: bool = True) -> subprocess.CompletedProcess:
        """A Slurm client command against this cluster."""
        return subprocess.run(list(argv), env=self.env, capture_output=True, text=True, check=check, timeout=60)

    def node_state(self) -> str:
        r = self.run("sinfo", "-h", "-o", "%T", check=False)
        return r.stdout.strip() if r.returncode == 0 else ""

    def jobs(self) -> dict:
        """Every job the controller knows (queued, running, or ended less than MinJobAge ago): {id: state}."""
        r = self.run("squeue", "-h", "-t", "all", "-o", "%i|%T")
        return dict(line.split("|", 1) for line in r.stdout.split())

    def ended_jobs(self) -> dict:
        """{job id: final state} of every job that ended, from the jobcomp/filetxt log."""
        ended = {}
        if self.jobcomp.exists():
            for line in self.jobcomp.read_text().splitlines():
                fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
                if "JobId" in fields:
                    ended[fields["JobId"]] = fields.get("JobState", "")
        return ended

    # ---------------------------------------------------------------------------------------------
    def _marked(self) -> list:
        """Pids of the processes (other than this one) whose environment names this cluster's directory."""
        needle = f"{MARKER}={self.root}\0".encode()
        pids = []
        for d in Path("/proc").iterdir():
            if not d.name.isdigit() or int(d.name) == os.getpid():
                continue
            try:
                if needle in (d / "environ").read_bytes() + b"\0":
                    pids.append(int(d.name))
            except OSError:
                continue
        return pids

    def stop(self, timeout: float = 30) -> list:
        """Cancel every job, stop slurmd, slurmctld and munged by their pids, then kill whatever process of
        this cluster or its jobs is still alive. Returns the pids that had to be killed that way."""
        if self.procs.get("slurmctld") and self.procs["slurmctld"].poll() is None:
            self.run("scancel", "-u", getpass.getuser(), check=False)
            deadline = time.time() + timeout
            while time.time() < deadline:
                try:
                    if not any(s in ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED")
                               for s in self.jobs().values()):
                        break
                except (subprocess.SubprocessError, ValueError):
                    break
                time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
        left = [p for p in self._marked()]
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.time() + 10
        while self._marked() and time.time() < deadline:
            time.sleep(0.2)
        return left

    def alive(self) -> list:
        """Pids of this cluster's processes still running (daemons, job steps, jobs)."""
        return [p.pid for p in self.procs.values() if p.poll() is None] + self._marked()

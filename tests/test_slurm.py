"""`reproduce --executor slurm` against a real Slurm: a throw-away single-node cluster (tests/slurm_cluster.py:
munged, slurmctld and slurmd under a temporary directory, stopped by their pids afterwards), the tiny T8 table
(one teacher, then three students: 4 jobs for 3 rows).

* a run gives the serial run's numbers, and asks a CPU-only partition for no GPU;
* a runner killed while its jobs are queued or running, started again, waits for them: every task ran as
  exactly one Slurm job (the controller's job list, and the jobcomp log of ended jobs);
* a job cancelled with ``scancel`` is noticed (squeue; there is no accounting database, so no sacct),
  resubmitted, and its row is reported with the serial run's numbers.

Needs Debian's slurmctld, slurmd, slurm-client and munge (.ci/run installs them) and root; skipped with the
reason otherwise. docs/cluster.md shows the same cluster started by hand."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import slurm_cluster
from itespy import experiments as ex
from itespy import reproduce as rp
from itespy.reproduce import slurm

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[1]
TINY = {**ex.QUICK_OVERRIDES, "max_train": 64, "max_test": 32, "batch_size": 32, "teacher_hidden": 32,
        "teacher_bottleneck": 16, "teacher_blocks": 1, "student_channels": 8, "student_blocks": 2}
ACTIVE = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    why = slurm_cluster.missing()
    if why:
        pytest.skip(why)
    root = tmp_path_factory.mktemp("slurm")
    if len(str(root)) > 60:  # munge's socket path must stay under the 108 bytes of a Unix socket address
        root = Path(tempfile.mkdtemp(prefix="itespy-slurm-", dir="/tmp"))
    c = slurm_cluster.SlurmCluster(root, partition="debug")
    try:
        c.start()
        yield c
    finally:
        left = c.stop()
        still = c.alive()
        assert not left and not still, (f"processes of the test cluster outlived its daemons: killed {left}, "
                                        f"still alive {still}\n{c.logs()}")


@pytest.fixture(scope="module")
def code_version():
    return "tests-" + rp.source_hash()  # pinned: the tree may be edited while tests run


@pytest.fixture(scope="module")
def serial(tmp_path_factory, code_version):
    """The serial run's trained numbers: {(table, row, metric, seed): value}."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ITESPY_CODE_VERSION", code_version)
        result = rp.reproduce(profile="smoke", only="T8", out=tmp_path_factory.mktemp("serial"), overrides=TINY,
                              threads=1, log=lambda *a: None)
    assert not result["failed"]
    return _kit(result["records"])


def _kit(records) -> dict:
    return {(r["table"], r["row"], r["metric"], r["seed"]): r["kit"] for r in records}


def _runner(cluster, out, code_version, *extra) -> tuple:
    """The command line a user types on the login node, and its environment (SLURM_CONF: this cluster)."""
    cmd = [sys.executable, "-m", "itespy", "reproduce", "--profile", "smoke", "--only", "T8", "--out", str(out),
           "--executor", "slurm", "--partition", cluster.partition, "--cpus", "1", "--mem", "1", "--time", "10",
           "--poll", "1"]
    for key, value in TINY.items():
        cmd += ["--set", f"{key}={value}"]
    env = {**cluster.env, "PYTHONPATH": os.pathsep.join([str(REPO), cluster.env.get("PYTHONPATH", "")]).rstrip(":"),
           "ITESPY_CODE_VERSION": code_version, "OMP_NUM_THREADS": "1"}
    return cmd + list(extra), env


def _run(cluster, out, code_version, *extra, timeout=300) -> str:
    cmd, env = _runner(cluster, out, code_version, *extra)
    r = subprocess.run(cmd, cwd=out.parent, env=env, capture_output=True, text=True, timeout=timeout)
    log = r.stdout + r.stderr
    assert r.returncode == 0, f"{log}\n{cluster.logs()}"
    return log


def _state(out) -> dict:
    path = out / "jobs" / "state.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _results(out) -> list:
    return json.loads((out / "results.json").read_text())["records"]


def _wait_for(what: str, ready, proc=None, timeout: float = 120.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = ready()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the runner exited before {what}:\n{proc.stdout.read()}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_slurm_run_gives_the_serial_numbers(cluster, serial, code_version, tmp_path):
    before = set(cluster.jobs())
    out = tmp_path / "out"
    log = _run(cluster, out, code_version)
    # the partition has no GPU, and none was asked for (sbatch would refuse a GPU request outright)
    assert "slurm: jobs of 10 min, 0 GPU(s) (partition debug has no GPUs; --gpus N asks for them), 1 CPU(s)" in log
    assert "slurm: 4 task(s) for 3 row(s)" in log
    records = _results(out)
    assert {(r["row"], r["status"]) for r in records} == {("physical", "ok"), ("nonphysical", "ok"), ("both", "ok")}
    assert _kit(records) == serial  # bit for bit
    state = _state(out)
    assert len(state) == 4 and {s["status"] for s in state.values()} == {"done"}
    ids = {s["job_id"] for s in state.values()}
    assert {j: s for j, s in cluster.jobs().items() if j not in before} == dict.fromkeys(ids, "COMPLETED")
    assert {j: cluster.ended_jobs().get(j) for j in ids} == dict.fromkeys(ids, "COMPLETED")
    with pytest.MonkeyPatch.context() as mp:  # what the runner reads: squeue's states; an unknown id is absent
        mp.setenv("SLURM_CONF", str(cluster.conf))
        assert slurm.job_states([*ids, "999999"]) == dict.fromkeys(ids, "COMPLETED")
        assert slurm.job_states(["999999"]) == {}

    # the dry-run plan says what each job asks for, from the same sinfo answer
    cmd, env = _runner(cluster, tmp_path / "plan", code_version, "--plan")
    plan = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=True).stdout
    assert plan.splitlines()[-1].startswith("slurm: jobs of 10 min, 0 GPU(s) (partition debug has no GPUs")


def test_a_killed_runner_started_again_submits_no_job_twice(cluster, serial, code_version, tmp_path):
    before = set(cluster.jobs())
    out = tmp_path / "out"
    cmd, env = _runner(cluster, out, code_version)
    first = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        submitted = _wait_for("a job to be submitted", lambda: _state(out), first)
    finally:
        first.send_signal(signal.SIGKILL)  # the runner dies; its jobs do not
        first.wait()
    ids = {tid: s["job_id"] for tid, s in submitted.items()}
    live = cluster.jobs()
    assert any(live.get(j) in ACTIVE for j in ids.values()), (ids, live)  # killed while its jobs were queued/running
    assert {s["status"] for s in _state(out).values()} == {"submitted"}

    log = _run(cluster, out, code_version)
    for tid, job_id in ids.items():  # waited for, or (a tiny job may end before the new runner plans) found done
        assert (f"job {job_id} submitted by an earlier run; waiting for it" in log
                or f"{tid}: job {job_id} submitted by an earlier run has finished meanwhile" in log), log
        assert f"submitted {tid}" not in log  # not resubmitted
    state = _state(out)
    assert len(state) == 4 and all(s["attempts"] == 1 and s["status"] == "done" for s in state.values())
    assert {tid: state[tid]["job_id"] for tid in ids} == ids
    # what Slurm ran: one job per task, no more
    ran = {j: s for j, s in cluster.jobs().items() if j not in before}
    assert ran == {s["job_id"]: "COMPLETED" for s in state.values()}, ran
    assert _kit(_results(out)) == serial


def test_a_cancelled_job_is_resubmitted_and_its_row_reported(cluster, serial, code_version, tmp_path):
    before = set(cluster.jobs())
    out = tmp_path / "out"
    cmd, env = _runner(cluster, out, code_version, "--retries", "1")
    runner = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        def running_student():
            students = {s["job_id"]: tid for tid, s in _state(out).items() if tid.startswith("student-")}
            live = cluster.jobs()
            return next(((j, tid) for j, tid in students.items() if live.get(j) == "RUNNING"), None)
        job_id, task_id = _wait_for("a student job to run", running_student, runner, timeout=180)
        cluster.run("scancel", job_id)
        stdout, _ = runner.communicate(timeout=300)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    assert runner.returncode == 0, f"{stdout}\n{cluster.logs()}"
    assert cluster.jobs()[job_id] == "CANCELLED" and cluster.ended_jobs()[job_id] == "CANCELLED", \
        "the job ended before scancel reached it"
    assert f"failed (attempt 1 of 2), resubmitting: job {job_id} ended without a result (CANCELLED" in stdout
    state = _state(out)
    assert state[task_id]["attempts"] == 2 and state[task_id]["job_id"] != job_id
    assert {s["status"] for s in state.values()} == {"done"}
    ran = {j: s for j, s in cluster.jobs().items() if j not in before}
    assert ran == {job_id: "CANCELLED", **{s["job_id"]: "COMPLETED" for s in state.values()}}, ran
    (table, row, _), = state[task_id]["rows"]
    records = _results(out)
    row_records = [r for r in records if (r["table"], r["row"]) == (table, row)]
    assert row_records and {r["status"] for r in row_records} == {"ok"}  # reported, not lost
    assert not (out / "rows" / table / row / "seed0.error.json").exists()
    assert _kit(records) == serial

"""Parallel and cluster runs of `itespy reproduce` (itespy.reproduce.scheduler): the task plan, the scheduling loop with
retries, local worker processes against the serial runner, the Slurm path through submitit's local executor
(including a runner killed mid-wait), and the job locks shared by workers on several nodes.

Every training here uses TINY overrides (networks of a few thousand parameters, one epoch): the numbers are
meaningless; that they are the same whichever way the rows were run is what is tested."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from itespy import experiments as ex
from itespy import reproduce as rp
from itespy.reproduce import backends
from itespy.reproduce import scheduler as sch

REPO = Path(__file__).resolve().parents[1]
TINY = {**ex.QUICK_OVERRIDES, "max_train": 64, "max_test": 32, "batch_size": 32, "teacher_hidden": 32,
        "teacher_bottleneck": 16, "teacher_blocks": 1, "student_channels": 8, "student_blocks": 2}


@pytest.fixture(scope="module", autouse=True)
def pinned_environment():
    """Pin the code version: the tree may be edited while tests run."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ITESPY_CODE_VERSION", "tests-" + rp.source_hash())
        yield


def _settings(out, **kw):
    return sch.row_settings(**{"profile": "smoke", "device": "cpu", "out": out, "overrides": TINY, **kw})


def _kit(records) -> dict:
    return {(r["table"], r["row"], r["metric"], r["seed"]): r["kit"] for r in records}


def test_plan_trains_each_teacher_once_before_the_rows_that_need_it(tmp_path):
    items = [(t, r, 0) for t in ("T3", "T8", "T9", "T1") for r in ex.get_table(t).row_ids]
    tasks = sch.plan(items, _settings(tmp_path))
    by_id = {t.id: t for t in tasks}
    teachers = [t for t in tasks if t.teacher_of]
    # T3's REP-only teacher and the default teacher (REP + RIC, also ITES-T of Table 1): two trainings
    assert len(teachers) == 2
    default = next(t for t in teachers if ("T3", "rep_ric", 0) in t.rows)
    assert set(default.rows) == {("T3", "rep_ric", 0), ("T1", "ites_t_gt", 0)}
    # priority: the teacher students wait for, the students, then the teacher nobody waits for (rep_only)
    assert tasks[0] is default and tasks[-1].rows == [("T3", "rep_only", 0)]
    assert all(not t.teacher_of for t in tasks[1:-1])
    students = {(t, r): task for task in tasks if not task.teacher_of for t, r, _ in task.rows}
    # the IMG rows need Human3.6M (skipped here) and cost rows train nothing: left to the notebooks
    assert ("T1", "ites_ts_img") not in students and not any(k[0] == "T9" for k in students)
    assert students[("T3", "rec_only")].needs == ()  # no L_KD: no teacher
    for key in (("T3", "all"), ("T3", "no_rec"), ("T8", "physical"), ("T1", "ites_ts_gt")):
        assert students[key].needs == (default.id,) and students[key].needs[0] in by_id
    # Table 1's ITES-TS, Table 3's full model and Table 8's "both" are one student: trained once
    assert students[("T1", "ites_ts_gt")] is students[("T3", "all")] is students[("T8", "both")]
    assert len(tasks) == 2 + 5 and all(t.id.startswith(("teacher-", "student-")) for t in tasks)

    # finished rows are not planned; a trained teacher is not retrained (its other rows are still evaluated)
    rp.run_row("T3", "rep_ric", **_settings(tmp_path))
    left = {t.id: t for t in sch.plan(items, _settings(tmp_path))}
    assert not any(("T3", "rep_ric", 0) in t.rows for t in left.values())
    assert left[default.id].rows == [("T1", "ites_t_gt", 0)]
    rp.run_row("T1", "ites_t_gt", **_settings(tmp_path))
    left = {t.id: t for t in sch.plan(items, _settings(tmp_path))}
    assert default.id not in left and students[("T3", "all")].id in left
    assert left[students[("T3", "all")].id].needs == ()  # its teacher is in the cache


class FakeBackend:
    """Jobs that finish on the next poll; ``fail[task id]`` = how many attempts fail first."""
    name = "local"

    def __init__(self, fail):
        self.fail, self.submitted, self.running, self.most_running = dict(fail), [], set(), 0

    def submit(self, task):
        self.submitted.append(task.id)
        self.running.add(task.id)
        self.most_running = max(self.most_running, len(self.running))
        return task.id

    def poll(self, tid):
        self.running.discard(tid)
        if self.fail.get(tid, 0) > 0:
            self.fail[tid] -= 1
            return "failed", f"{tid} crashed"
        return "ok", {"lines": [f"{tid} done"], "seconds": 1.0, "host": "h", "device": "cpu"}

    def job_id(self, tid):
        return None

    def attach(self, job_id):
        raise AssertionError("nothing to attach to")


def test_scheduling_loop_retries_then_reports_and_skips_dependents(tmp_path):
    tasks = [sch.Task("teacher-a", [("T7", "resfc", 0)], teacher_of=("T7", "resfc", 0)),
             sch.Task("teacher-b", [], teacher_of=("T3", "rep_only", 0)),
             sch.Task("T8-physical-seed0", [("T8", "physical", 0)], ("teacher-a",)),
             sch.Task("T8-both-seed0", [("T8", "both", 0)], ("teacher-b",)),
             sch.Task("T3-rec_only-seed0", [("T3", "rec_only", 0)])]
    backend = FakeBackend({"teacher-a": 1, "teacher-b": 5})
    lines = []
    results = sch.run_tasks(tasks, backend, tmp_path / "state.json", retries=2, max_running=2, poll=0,
                            log=lines.append, progress=False)
    assert results["teacher-a"][0] == "ok" and results["T8-physical-seed0"][0] == "ok"
    assert results["T3-rec_only-seed0"][0] == "ok"
    assert results["teacher-b"] == ("failed", "teacher-b crashed (after 3 attempt(s))")  # 1 + 2 retries
    assert results["T8-both-seed0"][0] == "failed" and "needs teacher-b" in results["T8-both-seed0"][1]
    assert backend.submitted.count("teacher-a") == 2 and backend.submitted.count("teacher-b") == 3
    assert "T8-both-seed0" not in backend.submitted  # never run without its teacher
    assert backend.submitted.index("T8-physical-seed0") > backend.submitted.index("teacher-a")
    assert backend.most_running <= 2
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["teacher-b"]["status"] == "failed" and state["teacher-a"]["status"] == "done"
    assert any("resubmitting" in line for line in lines)


def test_a_failure_no_retry_can_fix_is_reported_at_once(tmp_path):
    from itespy.data import DataNotFoundError
    from itespy.reproduce.backends import NO_RETRY, unfixable

    class MissingData(FakeBackend):
        def poll(self, tid):
            self.running.discard(tid)
            return "failed", NO_RETRY + "DataNotFoundError: data_2d_h36m_cpn_ft_h36m_dbb.npz not found"

    backend = MissingData({})
    results = sch.run_tasks([sch.Task("teacher-img", [("T1", "ites_t_img", 0)], teacher_of=("T1", "ites_t_img", 0))],
                            backend, tmp_path / "state.json", retries=2, poll=0, log=lambda *_: None, progress=False)
    assert backend.submitted == ["teacher-img"] and results["teacher-img"][0] == "failed"  # once, not three times
    assert unfixable(DataNotFoundError("x")) and unfixable(FileNotFoundError("x")) and not unfixable(RuntimeError("x"))
    assert unfixable("Traceback ...\nitespy.data.errors.DataError: bad file") and not unfixable("CUDA out of memory")


def test_parallel_workers_give_the_serial_results(tmp_path):
    # one torch thread in the serial run's notebook kernels and in each worker: the same float sums
    serial = rp.reproduce(profile="smoke", only="T3,T8", device="cpu", out=tmp_path / "serial", overrides=TINY,
                          threads=1, log=lambda *a: None)
    lines = []
    parallel = rp.reproduce(profile="smoke", only="T3,T8", device="cpu", out=tmp_path / "parallel", overrides=TINY,
                            jobs=2, threads=1, log=lines.append, progress=False)
    assert not serial["failed"] and not parallel["failed"]
    assert "2 worker process(es) on CPU, 1 torch thread(s) each" in lines
    assert any(line.startswith("local: 7 task(s) for 8 row(s)") for line in lines), lines[:3]  # T3 all = T8 both
    a, b = _kit(serial["records"]), _kit(parallel["records"])
    assert len(a) == 16 and a == b  # same numbers, bit for bit
    assert [c["passed"] for c in serial["claims"]] == [c["passed"] for c in parallel["claims"]]
    # the same cache keys, and the notebooks only collected: nothing was trained twice
    names = lambda d: sorted(p.parent.name for p in (tmp_path / d / "cache").glob("*/metrics.json"))  # noqa: E731
    assert names("serial") == names("parallel") and len(names("serial")) == 7
    executed = json.loads((tmp_path / "parallel" / "notebooks" / "05_ablation_losses.ipynb").read_text())
    params = next(c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", []))
    assert "compute = False" in "".join(params["source"])
    state = json.loads((tmp_path / "parallel" / "jobs" / "state.json").read_text())
    assert {s["status"] for s in state.values()} == {"done"} and all(s["seconds"] > 0 for s in state.values())
    assert "rows computed by 2 local worker process(es): 7 training task(s) done" in \
        (tmp_path / "parallel" / "REPORT.md").read_text()

    # a rerun finds every row finished: nothing is planned, nothing retrained
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "parallel").rglob("metrics.json")}
    lines.clear()
    rp.reproduce(profile="smoke", only="T3,T8", device="cpu", out=tmp_path / "parallel", overrides=TINY, jobs=2,
                 threads=1, log=lines.append, progress=False)
    assert not any("task(s)" in line for line in lines)
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "parallel").rglob("metrics.json")} == mtimes


def test_failing_rows_are_reported_by_row_and_bad_data_is_not_retried(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not an npz file")  # present (so the rows are planned) but unreadable: a DataError in the job
    data = f"mocap:{bad}"
    settings = _settings(tmp_path, data=data)
    lines = []
    results = sch.run_rows([("T7", "resfc", 0), ("T8", "both", 0)], settings, "local", jobs=2, retries=1,
                           log=lines.append, progress=False)
    assert {s for s, _ in results.values()} == {"failed"}
    assert not any("resubmitting" in line for line in lines)  # the same file would fail again: not retried
    for table, row in (("T7", "resfc"), ("T8", "both")):
        stored = json.loads((tmp_path / "rows" / table / row / "seed0.error.json").read_text())["records"]
        assert stored[0]["status"] == "error" and "bad.npz" in stored[0]["note"]
        assert stored[0]["executor"] == "local"
    teacher_note = json.loads((tmp_path / "rows" / "T7" / "resfc" / "seed0.error.json").read_text())
    assert "not retried" in teacher_note["records"][0]["note"] and "after 1 attempt(s)" in teacher_note["records"][0]["note"]
    # the notebooks' collection step reports the stored error instead of training on the spot
    recs = rp.run_table("T8", profile="smoke", data=data, device="cpu", out_dir=tmp_path,
                        overrides=TINY, rows=["both"], log=None, compute=False)
    assert recs[0]["status"] == "error" and "needs teacher-" in recs[0]["note"]
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").glob("*/metrics.json"))


def test_rows_whose_data_file_is_missing_are_not_planned(tmp_path):
    settings = _settings(tmp_path, data="mocap:/no/such/file.npz")
    assert sch.plan([("T7", "resfc", 0), ("T8", "both", 0)], settings) == []  # skipped with a reason, never trained


def test_workers_are_pinned_one_per_gpu():
    assert backends.worker_gpus(4, [0, 1, 2, 3]) == [0, 1, 2, 3]
    assert backends.worker_gpus(3, [0, 1]) == [0, 1, 0]
    assert backends.worker_gpus(2, []) == []
    assert backends.visible_gpus("cpu") == [] and backends.visible_gpus("cuda:1") == []


def _fake_slurm_commands(tmp_path, monkeypatch):
    """srun (submitit only looks for it before it writes a script) and an sinfo that lists two partitions:
    gpu (the default, nodes with 4 A100s) and cpu (no generic resources)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "sinfo").write_text("#!/bin/sh\nprintf 'gpu*|gpu:a100:4(S:0-1)\\ncpu|(null)\\ncpu|(null)\\n'\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_slurm_options_reach_the_sbatch_script(tmp_path, monkeypatch):
    with monkeypatch.context() as mp:
        mp.setenv("PATH", str(tmp_path))  # no cluster commands: a clear refusal (CI installs a real Slurm)
        with pytest.raises(RuntimeError, match="sbatch/srun not found"):
            rp.reproduce(executor="slurm", out=tmp_path / "never", log=None)
    assert not (tmp_path / "never").exists()
    _fake_slurm_commands(tmp_path, monkeypatch)
    lines = []
    backend = backends.SubmititBackend(tmp_path, "slurm", _settings(tmp_path, device="auto"), "v1", "paper",
                                  partition="gpu", time_min=90, mem_gb=32, slurm_extra={"account": "mylab"},
                                  log=lines.append)
    script = backend.executor._executor._make_submission_file_text("python -m x", "uid")
    for expected in ("--partition=gpu", "--time=90", "--mem=32GB", "--gpus-per-node=1", "--cpus-per-task=8",
                     "--account=mylab"):
        assert expected in script, (expected, script)
    assert "1 GPU(s) (partition gpu has GPUs (gpu:a100:4(S:0-1)))" in lines[0]

    def gpu_option(device="auto", **kw):
        b = backends.SubmititBackend(tmp_path, "slurm", _settings(tmp_path, device=device), "v1", "smoke",
                                     log=lambda *a: None, **kw)
        script = b.executor._executor._make_submission_file_text("python -m x", "uid")
        return next((line.split("=")[1] for line in script.splitlines() if "--gpus-per-node" in line), None)
    assert gpu_option(device="cpu") is None
    assert gpu_option(partition="cpu") is None  # a CPU-only partition: no GPU asked for
    assert gpu_option() == "1"  # the default partition (gpu*) has GPUs
    assert gpu_option(partition="cpu", gpus=2) == "2" and gpu_option(partition="cpu", device="cuda") == "1"
    assert backends.slurm.has_gpus(["(null)", "gpu:2,mps:100"]) and not backends.slurm.has_gpus(["(null)", "gpus_x"])


def test_the_plan_says_what_each_slurm_job_asks_for(tmp_path, monkeypatch, capsys):
    _fake_slurm_commands(tmp_path, monkeypatch)
    args = ["--profile", "smoke", "--only", "T8", "--out", str(tmp_path / "out"), "--plan", "--executor", "slurm"]
    assert rp.main(args + ["--partition", "cpu", "--mem", "4", "--slurm-set", "account=mylab"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == ("slurm: jobs of 30 min, 0 GPU(s) (partition cpu has no GPUs; --gpus N asks for them), "
                    "2 CPU(s), 4 GB, partition cpu, --account=mylab"), last
    assert rp.main(args) == 0
    assert "1 GPU(s) (partition gpu has GPUs" in capsys.readouterr().out
    monkeypatch.setenv("PATH", str(tmp_path))  # no sinfo: no GPU asked for, and said why
    assert rp.main(args + ["--device", "cpu"]) == 0 and "0 GPU(s) (--device cpu)" in capsys.readouterr().out
    assert rp.main(args) == 0
    assert "0 GPU(s) (sinfo could not say whether the default partition has GPUs" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()


def test_a_slurm_job_that_ended_without_a_result_is_noticed(tmp_path, monkeypatch):
    """Job states come from squeue (sacct fails on a cluster without accounting, so submitit would wait forever
    for a cancelled job); tests/test_slurm.py checks the same against a real Slurm."""
    _fake_slurm_commands(tmp_path, monkeypatch)
    backend = backends.SubmititBackend(tmp_path, "slurm", _settings(tmp_path), "v1", "smoke", log=lambda *a: None)
    backend.STATES_MAX_AGE_S = 0.0
    states = {"41": "PENDING", "42": "RUNNING", "43": "CANCELLED", "44": "COMPLETED"}  # 45: unknown to Slurm
    monkeypatch.setattr(backends.slurm, "job_states", lambda ids: {j: states[j] for j in ids if j in states})
    jobs = {j: backend.attach(j) for j in ("41", "42", "43", "44", "45")}
    assert backend.poll(jobs["41"]) == backend.poll(jobs["42"]) == ("running", "")
    status, message = backend.poll(jobs["43"])
    assert status == "failed" and message.startswith("job 43 ended without a result (CANCELLED; log: ")
    # ended with no result file yet (a shared filesystem's lag, a requeue): waited for a grace period
    assert backend.poll(jobs["44"])[0] == "running" and backend.poll(jobs["45"])[0] == "running"
    monkeypatch.setattr(backends.slurm, "GRACE_S", 0.0)
    assert backend.poll(jobs["44"])[1].startswith("job 44 ended without a result (COMPLETED;")
    assert backend.poll(jobs["45"])[1].startswith("job 45 ended without a result (no longer known to Slurm;")
    monkeypatch.setattr(backends.slurm, "job_states", lambda ids: None)  # squeue did not answer: no conclusion
    assert backend.poll(backend.attach("46")) == ("running", "")


def test_command_line_parallel_arguments():
    import argparse
    parser = argparse.ArgumentParser()
    rp.add_arguments(parser)
    args = parser.parse_args(["--jobs", "4", "--executor", "slurm", "--partition", "gpu", "--time", "600",
                              "--slurm-set", "account=mylab", "--slurm-set", "qos=high", "--retries", "1",
                              "--threads", "2"])
    assert (args.jobs, args.executor, args.partition, args.time, args.retries) == (4, "slurm", "gpu", 600, 1)
    assert args.threads == 2
    assert rp.parse_slurm_set(args.slurm_set) == {"account": "mylab", "qos": "high"}
    with pytest.raises(ValueError, match="--slurm-set"):
        rp.parse_slurm_set(["account"])
    with pytest.raises(ValueError, match="--jobs"):
        rp.reproduce(jobs=0, out="/nonexistent/never", log=None)
    with pytest.raises(ValueError, match="--executor"):
        rp.reproduce(executor="kubernetes", out="/nonexistent/never", log=None)
    with pytest.raises(ValueError, match="--threads"):
        rp.reproduce(threads=0, out="/nonexistent/never", log=None)


def _reproduce_cli(out, *extra):
    cmd = [sys.executable, "-m", "itespy", "reproduce", "--profile", "smoke", "--only", "T7", "--device", "cpu",
           "--out", str(out), "--executor", "submitit-local", "--poll", "0.3"]
    for key, value in {**TINY, "max_train": 1024, "teacher_epochs": 4}.items():
        cmd += ["--set", f"{key}={value}"]
    return cmd + list(extra)


def test_submitit_runner_killed_mid_wait_picks_its_jobs_up_again(tmp_path):
    out = tmp_path / "out"
    state_path = out / "jobs" / "state.json"
    first = subprocess.Popen(_reproduce_cli(out), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (state_path.exists() and len(json.loads(state_path.read_text())) == 2):
        assert first.poll() is None, first.stdout.read()
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)  # the runner dies mid-wait; its submitted jobs do not
    first.wait()
    submitted = json.loads(state_path.read_text())
    assert {s["status"] for s in submitted.values()} == {"submitted"}
    job_ids = {tid: s["job_id"] for tid, s in submitted.items()}
    assert any(rp.pid_alive(int(j)) for j in job_ids.values()), "the jobs ended before the runner was killed"

    second = subprocess.run(_reproduce_cli(out), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stdout + second.stderr
    log = second.stdout + second.stderr
    for tid, job_id in job_ids.items():  # waited for, or found finished if it ended before this runner planned
        assert (f"job {job_id} submitted by an earlier run; waiting for it" in log
                or f"{tid}: job {job_id} submitted by an earlier run has finished meanwhile" in log), log
    state = json.loads(state_path.read_text())
    assert {tid: s["job_id"] for tid, s in state.items()} == job_ids
    assert {s["status"] for s in state.values()} == {"done"}
    assert all(s["attempts"] == 1 for s in state.values())
    assert "submitted T7" not in log and "submitted teacher" not in log
    records = json.loads((out / "results.json").read_text())["records"]
    assert {(r["row"], r["status"]) for r in records} == {("agcn", "ok"), ("resfc", "ok")}
    assert sorted(p.name for p in (out / "jobs" / "submitit").iterdir() if p.name.isdigit()) == sorted(job_ids.values())


def test_a_job_that_finished_after_its_runner_died_is_marked_done_not_left_submitted(tmp_path):
    state_path = tmp_path / "state.json"
    state_path.write_text(json.dumps({"teacher-a": {"status": "submitted", "job_id": "17", "attempts": 1},
                                      "student-b": {"status": "submitted", "job_id": "18", "attempts": 1},
                                      "student-c": {"status": "failed", "job_id": "19", "attempts": 3}}))
    lines = []
    sch._settle_finished_jobs(state_path, planned={"student-b"}, log=lines.append)
    state = json.loads(state_path.read_text())
    assert state["teacher-a"]["status"] == "done" and state["teacher-a"]["attempts"] == 1  # no longer planned: done
    assert state["student-b"]["status"] == "submitted"  # still planned: the loop re-attaches to it
    assert state["student-c"]["status"] == "failed"
    assert lines == ["teacher-a: job 17 submitted by an earlier run has finished meanwhile"]


def test_a_job_lock_left_on_another_node_is_taken_over_once_stale(tmp_path):
    lock = tmp_path / "teacher-x.lock"
    lock.write_text(json.dumps({"pid": 12345, "host": "node-that-died", "started": "then"}))
    assert not rp.try_lock(lock, stale_after=60)  # fresh: its holder may be alive on that node
    old = time.time() - 120
    os.utime(lock, (old, old))
    assert rp.try_lock(lock, stale_after=60)  # not refreshed for 2 min: stale, taken over
    assert json.loads(lock.read_text())["pid"] == os.getpid()
    lock.unlink()
    # a held lock is refreshed by its heartbeat, so that other nodes do not take it over
    with rp.job_lock(lock, heartbeat=0.05):
        os.utime(lock, (old, old))
        time.sleep(0.3)
        assert time.time() - lock.stat().st_mtime < 5
    assert not lock.exists()


def test_a_preempted_slurm_job_is_requeued_with_the_same_call(tmp_path):
    """On pre-emption or time-out submitit calls checkpoint() and requeues what it returns; training then
    resumes from its epoch checkpoints (tests/test_crash_safety.py checks that resumption)."""
    import submitit
    call = backends._task_call()
    assert isinstance(call, submitit.helpers.Checkpointable)
    task = sch.Task("teacher-x", [("T7", "resfc", 0)], teacher_of=("T7", "resfc", 0))
    again = call.checkpoint(task, _settings(tmp_path), "v1", 2)
    assert again.function is call and again.args == (task, _settings(tmp_path), "v1", 2)


def test_plan_option_prints_the_trainings_and_trains_nothing(tmp_path, capsys):
    from itespy.data.h36m import FILE_2D, FILE_3D
    h36m = tmp_path / "h36m"
    h36m.mkdir()
    for name in (FILE_3D, *FILE_2D.values()):  # present: a row whose files are missing is not planned
        (h36m / name).write_bytes(b"")
    out = tmp_path / "out"
    assert rp.main(["--profile", "paper", "--data", f"h36m:{h36m}", "--out", str(out), "--plan"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("28 training(s) for 37 row(s), in priority order:")
    lines = text.splitlines()[1:]
    assert "T1:ites_t_gt" in lines[0] and "F6:K12" in lines[0]  # the default teacher comes first
    assert "T1:ites_ts_img  <- waits for teacher-" in text  # the CPN column has its own teacher and student
    assert not out.exists()


def test_stopping_the_runner_stops_its_local_workers(tmp_path):
    backend = backends.LocalBackend(1, _settings(tmp_path), "v1", log=lambda *a: None)
    future = backend._pool().submit(time.sleep, 60)  # a worker busy with a long task
    while not future.running():
        time.sleep(0.05)
    workers = list(backend.pool._processes.values())
    t0 = time.time()
    backend.close(abort=True)  # what Ctrl-C does: no waiting for the task to end
    assert time.time() - t0 < 30 and all(not p.is_alive() for p in workers)


def test_thread_count_of_the_processes_does_not_change_the_numbers(tmp_path):
    # every training runs with its configuration's thread count (Config.threads, part of the cache key),
    # whatever the serial process or the workers were started with
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        serial = rp.reproduce(profile="smoke", only="T8", device="cpu", out=tmp_path / "serial", overrides=TINY,
                              log=lambda *a: None)
    finally:
        torch.set_num_threads(before)
    parallel = rp.reproduce(profile="smoke", only="T8", device="cpu", out=tmp_path / "parallel", overrides=TINY,
                            jobs=2, log=lambda *a: None, progress=False)
    assert not serial["failed"] and not parallel["failed"]
    assert _kit(serial["records"]) == _kit(parallel["records"])  # bit for bit
    assert {r["threads"] for r in serial["records"] if r["status"] == "ok"} == {1}

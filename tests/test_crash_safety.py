"""Crash safety and determinism through the command line (CPU).

A training run SIGKILLed mid-epoch and restarted with ``--resume`` must finish with exactly the metrics of
an uninterrupted run with the same seed; a truncated latest checkpoint must fall back to the previous one
with a warning; files are written atomically; the same seed twice gives identical ``evaluate --json``;
run_info.json records seed, versions, device and config next to every result."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import itespy
from itespy import io
from itespy.cli import main

REPO = Path(__file__).resolve().parents[1]
TRAIN = ["train", "--data", "synthetic", "--profile", "smoke", "--stage", "teacher", "--epochs", "4",
         "--max-train", "1024", "--quiet", "--device", "cpu", "--seed", "0"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
ENV.pop("ITESPY_DEBUG", None)



def _itespy(*args):
    flat = [a for arg in args for a in (arg if isinstance(arg, list) else [arg])]
    return [sys.executable, "-m", "itespy", *map(str, flat)]


def _start(*args):
    return subprocess.Popen(_itespy(*args), env=ENV, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(proc, what):
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, f"{what} failed ({proc.returncode}):\n{err}"
    return out, err


def _losses(run_dir):
    """Per-epoch losses of history_teacher.json (wall times differ between runs)."""
    history = json.loads((run_dir / "history_teacher.json").read_text())
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history]


@pytest.fixture(scope="module")
def crashed(tmp_path_factory):
    """An uninterrupted reference run and, side by side, the same run SIGKILLed during its third epoch (after
    teacher_last.pt and teacher_prev.pt exist). The killed directory is then resumed twice in parallel: as it
    is, and (a copy) with teacher_last.pt truncated."""
    root = tmp_path_factory.mktemp("crash")
    ref = _start(TRAIN, "--out", root / "ref")
    victim = _start(TRAIN, "--out", root / "killed")
    deadline = time.time() + 240
    while not ((root / "killed" / "teacher_prev.pt").exists() and (root / "killed" / "teacher_last.pt").exists()):
        assert victim.poll() is None, f"the run ended before it could be killed: {victim.communicate()[1]}"
        assert time.time() < deadline, "no second epoch checkpoint within 240 s"
        time.sleep(0.05)
    time.sleep(0.5)  # well inside epoch 3 (an epoch takes seconds)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=60)
    left = {p.name: (torch.load(p, weights_only=False)["epoch"] if p.suffix == ".pt" else None)
            for p in (root / "killed").iterdir()}
    shutil.copytree(root / "killed", root / "fallback")
    last = root / "fallback" / "teacher_last.pt"
    last.write_bytes(last.read_bytes()[:1000])  # truncated latest checkpoint
    (root / "killed" / ".teacher_last.pt.crash.tmp").write_bytes(b"half a checkpoint")  # as a kill mid-write leaves
    resumed = _start(TRAIN, "--out", root / "killed", "--resume")
    fallback = _start(TRAIN, "--out", root / "fallback", "--resume")
    return SimpleNamespace(root=root, killed_rc=victim.returncode, left=left, ref=_finish(ref, "reference run"),
                           resumed=_finish(resumed, "resumed run"), fallback=_finish(fallback, "fallback run"))


def test_killed_run_resumes_to_exactly_the_uninterrupted_metrics(crashed):
    print("left by the killed run (file: 0-based epoch):", crashed.left)
    assert crashed.killed_rc == -signal.SIGKILL
    assert "metrics.json" not in crashed.left and "teacher.pt" not in crashed.left
    assert {"config.json", "run_info.json", "teacher_last.pt", "teacher_prev.pt"} <= set(crashed.left)
    last, prev = crashed.left["teacher_last.pt"], crashed.left["teacher_prev.pt"]
    assert last in (1, 2) and prev == last - 1
    killed = crashed.root / "killed"
    ref = json.loads((crashed.root / "ref" / "metrics.json").read_text())
    resumed = json.loads((killed / "metrics.json").read_text())
    print(f"teacher MPJPE: uninterrupted {ref['teacher']['mpjpe_scaled_flip']['mean']!r}, "
          f"resumed {resumed['teacher']['mpjpe_scaled_flip']['mean']!r}")
    assert resumed["teacher"] == ref["teacher"]  # every protocol, per action, per joint: bit for bit
    assert _losses(killed) == _losses(crashed.root / "ref")
    assert [h["epoch"] for h in _losses(killed)] == [1, 2, 3, 4]
    assert not list(killed.glob(".*.tmp")), "stale temp files were not cleaned up"
    assert "Falling back" not in crashed.resumed[1]


def test_corrupt_latest_checkpoint_falls_back_to_the_previous_one(crashed):
    err = crashed.fallback[1]
    print(err.strip())
    assert "teacher_last.pt: cannot be read" in err and "Falling back to the previous checkpoint" in err
    assert "Traceback" not in err
    run = crashed.root / "fallback"
    ref = json.loads((crashed.root / "ref" / "metrics.json").read_text())
    assert json.loads((run / "metrics.json").read_text())["teacher"] == ref["teacher"]
    assert _losses(run) == _losses(crashed.root / "ref")


def test_run_info_records_seed_versions_device_and_config(crashed):
    info = json.loads((crashed.root / "ref" / "run_info.json").read_text())
    assert {"seed", "device", "itespy", "torch", "numpy", "python", "profile", "config", "stage",
            "data_meta"} <= set(info)
    assert info["seed"] == 0 and info["device"] == "cpu" and info["stage"] == "teacher"
    assert info["itespy"] == itespy.__version__ and info["torch"] == torch.__version__
    assert info["config"] == json.loads((crashed.root / "ref" / "config.json").read_text())
    assert info["config"]["teacher_epochs"] == 4 and info["config"]["max_train"] == 1024
    assert info["data_meta"]["train"]["frames"] == 1024
    metrics = json.loads((crashed.root / "ref" / "metrics.json").read_text())
    assert metrics["seed"] == 0 and metrics["device"] == "cpu" and metrics["profile"] == "smoke"


def test_same_seed_twice_gives_identical_cli_evaluate_json(tmp_path, capsys):
    small = ["train", "--data", "synthetic", "--stage", "both", "--epochs", "1", "--max-train", "128",
             "--max-test", "32", "--quiet", "--device", "cpu", "--seed", "3"]
    results = []
    for name in ("a", "b"):
        assert main([*small, "--out", str(tmp_path / name)]) == 0
        capsys.readouterr()
        assert main(["evaluate", "--checkpoint", str(tmp_path / name), "--json", "--device", "cpu"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result.pop("checkpoint") == str(tmp_path / name)
        results.append(result)
    print(json.dumps(results[0]["student"]))
    assert set(results[0]) >= {"teacher", "student", "frames", "data", "protocols"}
    assert results[0] == results[1]


def test_atomic_writes_leave_the_old_file_or_the_new_one(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    io.atomic_write_json(target, {"old": 1})
    with monkeypatch.context() as m:  # a crash between writing the temp file and renaming it
        m.setattr(io.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk gone")))
        with pytest.raises(OSError, match="disk gone"):
            io.atomic_write_json(target, {"new": 2})
    assert json.loads(target.read_text()) == {"old": 1}
    with pytest.raises(Exception):  # an object torch cannot pickle: fails before the file is touched
        io.atomic_torch_save(tmp_path / "teacher.pt", {"model": lambda: None})
    assert not (tmp_path / "teacher.pt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]  # no temp files left behind
    synced = []
    monkeypatch.setattr(io.os, "fsync", lambda fd: synced.append(fd))
    io.atomic_write_json(target, {"new": 2})
    assert synced and json.loads(target.read_text()) == {"new": 2}


def test_a_kill_between_the_checkpoint_renames_resumes_from_prev(tmp_path):
    """Killed after ``_last`` became ``_prev`` but before the new ``_last`` was renamed into place."""
    from itespy.config import make_config
    from itespy.data import load_splits
    from itespy.run import run_experiment
    cfg = make_config("smoke", teacher_hidden=64, teacher_bottleneck=32, teacher_blocks=2, max_train=128,
                      max_test=32, teacher_epochs=2, device="cpu")
    splits = load_splits("synthetic", seed=0, max_train=128, max_test=32)
    full = run_experiment(cfg, tmp_path / "run", stage="teacher", splits=splits, progress=False)
    for name in ("teacher_last.pt", "teacher.pt", "metrics.json", "history_teacher.json"):
        (tmp_path / "run" / name).unlink()
    assert torch.load(tmp_path / "run" / "teacher_prev.pt", weights_only=False)["epoch"] == 0
    resumed = run_experiment(cfg, tmp_path / "run", stage="teacher", splits=splits, resume=True, progress=False)
    assert [h["epoch"] for h in json.loads((tmp_path / "run" / "history_teacher.json").read_text())] == [1, 2]
    assert resumed["teacher"] == full["teacher"]


def test_checkpoint_backup_moves_only_after_the_new_file_is_written(tmp_path, monkeypatch):
    last, prev = tmp_path / "teacher_last.pt", tmp_path / "teacher_prev.pt"
    io.atomic_torch_save(last, {"epoch": 0})
    io.atomic_torch_save(last, {"epoch": 1}, backup=prev)
    assert torch.load(prev)["epoch"] == 0 and torch.load(last)["epoch"] == 1
    monkeypatch.setattr(io.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):  # the new data never reached the disk: nothing moves
        io.atomic_torch_save(last, {"epoch": 2}, backup=prev)
    assert torch.load(prev)["epoch"] == 0 and torch.load(last)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["teacher_last.pt", "teacher_prev.pt"]

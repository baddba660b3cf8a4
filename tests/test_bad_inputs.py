"""Bad inputs: every one must fail with a one-paragraph message naming the input and what was expected.

CLI cases run ``itespy.cli.main(argv)`` in-process (a few through ``python -m itespy`` as a subprocess):
exit status 2, ``error: ...`` on stderr, no traceback, and no partially written run directory. Library
cases (the parameters the notebooks pass) must raise ValueError / FileNotFoundError / RuntimeError
subclasses with the same kind of message."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from itespy.cli import main
from itespy.config import make_config
from itespy.data import DataError, load_splits
from itespy.metrics import mpjpe, p_mpjpe
from itespy.models import build_teacher
from itespy.run import RunDirectoryError, run_experiment
from itespy.checkpoints import CheckpointError, load_model
from itespy.devices import resolve_device
from itespy.inference import predict
from itespy.train import train_teacher

REPO = Path(__file__).resolve().parents[1]
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
# Tiny networks so the fixture runs train in seconds; the CLI reads the architecture from the checkpoints.
TINY = dict(teacher_hidden=64, teacher_bottleneck=32, teacher_blocks=2, student_channels=16, student_blocks=2,
            max_train=64, max_test=32, teacher_epochs=1, student_epochs=1, cycle_copies=1, device="cpu")
TRAIN_SMALL = ["--epochs", "1", "--max-train", "64", "--max-test", "32", "--device", "cpu", "--quiet"]



# ------------------------------------------------------------------------------------------ helpers
def cli_fails(argv, capsys, *fragments):
    """Run the CLI in-process; expect exit status 2 and one paragraph on stderr containing ``fragments``."""
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse rejects choices itself (also status 2)
        rc = exc.code
    out, err = capsys.readouterr()
    assert rc == 2, f"expected exit status 2, got {rc}; stderr: {err}"
    assert "Traceback" not in err, err
    message = err.strip().splitlines()[-1]
    assert message.startswith(("error: ", "python -m itespy")), err
    assert "\n\n" not in err.strip(), f"expected one paragraph: {err}"
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    print(f"{' '.join(map(str, argv))}\n    -> {message}")
    return message


def assert_absent_or_empty(folder: Path):
    assert not folder.exists() or not any(folder.iterdir()), sorted(p.name for p in folder.iterdir())


def snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def splits():
    return load_splits("synthetic", seed=0, max_train=64, max_test=32)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, splits):
    """A finished tiny run (teacher + student), one whose teacher has K = 5, and mocap npz files."""
    root = tmp_path_factory.mktemp("bad_inputs")
    cfg = make_config("smoke", **TINY)
    run_experiment(cfg, root / "run", splits=splits, progress=False)
    run_experiment(cfg.replace(num_atoms=5), root / "k5", stage="teacher", splits=splits, progress=False)
    return root


def _copy_run(runs, name) -> Path:
    dst = runs / name
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(runs / "run", dst)
    return dst


@pytest.fixture(scope="module")
def npz_files(tmp_path_factory):
    """Bandai-format mocap npz files: a good one and one per defect."""
    from itespy.data.synthetic import generate
    root = tmp_path_factory.mktemp("npz")
    d = generate(n_subjects=2, clips_per_subject=3, clip_len=12, seed=0)
    names, clip = np.unique(d["sequence"], return_inverse=True)
    good = dict(positions=d["positions"], clip=clip.astype(np.int32), frame=d["frame"].astype(np.int32),
                clip_names=names, clip_actor=np.array(["normal", "feminine", "active"] * 2),
                clip_action=np.array(["walk"] * 6))

    def save(name, **changes):
        arrays = {k: v for k, v in {**good, **changes}.items() if v is not None}
        np.savez(root / name, **arrays)
        return root / name

    nan, inf = good["positions"].copy(), good["positions"].copy()
    nan[3, 4, 1], inf[5, 2, 0] = np.nan, np.inf
    files = {"good": save("good.npz"), "j16": save("j16.npz", positions=good["positions"][:, :16]),
             "nan": save("nan.npz", positions=nan), "inf": save("inf.npz", positions=inf),
             "nokey": save("nokey.npz", clip_actor=None),
             "empty": save("empty.npz", positions=np.zeros((0, 17, 3)), clip=np.zeros(0, int), frame=np.zeros(0, int))}
    raw = files["good"].read_bytes()
    (root / "truncated.npz").write_bytes(raw[:len(raw) // 2])
    (root / "text.npz").write_text("positions,clip\n1,2\n")
    files.update(truncated=root / "truncated.npz", text=root / "text.npz", missing=root / "missing.npz")
    return files


# ------------------------------------------------------------------------------------ CLI: train --data
@pytest.mark.parametrize("case, fragments", [
    ("nosuch", ["Unknown DATA prefix 'nosuch'", "Expected synthetic | mocap:PATH.npz"]),
    ("3dhp:/nowhere", ["test-only"]),
    ("mocap:", ["needs a path"]),
])
def test_train_with_a_bad_data_spec(case, fragments, tmp_path, capsys):
    cli_fails(["train", "--data", case, "--out", tmp_path / "D", *TRAIN_SMALL], capsys, *fragments)
    assert_absent_or_empty(tmp_path / "D")


@pytest.mark.parametrize("defect, fragments", [
    ("missing", ["mocap npz", "file not found", "missing.npz"]),
    ("text", ["text.npz", "cannot be read as an .npz file"]),
    ("truncated", ["truncated.npz", "cannot be read as an .npz file"]),
    ("j16", ["j16.npz", "(N, 17, 3)", "got 16 joints"]),
    ("nan", ["nan.npz", "'positions'", "NaN/inf", "[3, 4, 1]", "expected finite numbers"]),
    ("inf", ["inf.npz", "NaN/inf", "[5, 2, 0]"]),
    ("nokey", ["nokey.npz", "missing key(s) ['clip_actor']", "expected keys"]),
    ("empty", ["empty.npz", "no frames"]),
])
def test_train_with_a_bad_mocap_file_leaves_no_output(defect, fragments, npz_files, tmp_path, capsys):
    cli_fails(["train", "--data", f"mocap:{npz_files[defect]}", "--out", tmp_path / "D", *TRAIN_SMALL],
              capsys, *fragments)
    assert_absent_or_empty(tmp_path / "D")


# ------------------------------------------------------------------------------- CLI: train settings
@pytest.mark.parametrize("flags, fragments", [
    (["--epochs", "-1"], ["config.teacher_epochs", "epochs >= 0", "-1"]),
    (["--epochs", "0"], ["config.teacher_epochs", "at least 1 epoch", "got 0"]),
    (["--epochs", "1", "--student-epochs", "0"], ["config.student_epochs", "at least 1 epoch"]),
    (["--student-lr-decay-every", "-1"], ["config.student_lr_decay_every", "epochs >= 0", "-1"]),
    (["--batch-size", "0"], ["config.batch_size", "positive integer", "got 0"]),
    (["--batch-size", "-8"], ["config.batch_size", "got -8"]),
    (["--num-atoms", "0"], ["config.num_atoms", "positive integer"]),
    (["--max-train", "0"], ["config.max_train", "positive number of poses"]),
    (["--max-train", "1"], ["training split of 'synthetic'", "got 1 poses", "at least 2"]),
    (["--device", "tpu"], ["config.device", "auto, cpu, cuda or cuda:N", "'tpu'"]),
    pytest.param(["--device", "cuda"], ["device 'cuda'", "CUDA was requested", "--device cpu"], marks=NO_CUDA),
    (["--profile", "huge"], ["--profile", "invalid choice: 'huge'", "smoke"]),
    (["--stage", "student"], ["needs a trained teacher", "teacher.pt not found", "--teacher"]),
])
def test_train_with_bad_settings_leaves_no_output(flags, fragments, tmp_path, capsys):
    base = [f for f in TRAIN_SMALL if f != "--device" and f != "cpu"] if "--device" in flags else TRAIN_SMALL
    cli_fails(["train", "--out", tmp_path / "D", *base, *flags], capsys, *fragments)
    assert_absent_or_empty(tmp_path / "D")


def test_train_student_schedule_flags_reach_the_config(tmp_path):
    """``--student-epochs`` and ``--student-lr-decay-every`` set stage 2's schedule only (README: "a student that
    earns its place"); without the flag the profile's decay period stays."""
    assert main(["train", "--out", str(tmp_path / "R"), "--profile", "tutorial", *TRAIN_SMALL,
                 "--student-epochs", "2", "--student-lr-decay-every", "1"]) in (0, None)
    saved = json.loads((tmp_path / "R" / "config.json").read_text())
    assert (saved["teacher_epochs"], saved["student_epochs"], saved["student_lr_decay_every"]) == (1, 2, 1)
    assert make_config("tutorial").student_lr_decay_every not in (None, 1)


def test_train_reusing_a_teacher_with_another_k(runs, tmp_path, capsys):
    cli_fails(["train", "--stage", "student", "--teacher", runs / "k5", "--out", tmp_path / "S", *TRAIN_SMALL],
              capsys, "k5/teacher.pt", "num_atoms: saved 5, requested 12")
    assert_absent_or_empty(tmp_path / "S")


def test_train_into_a_file_or_a_finished_run_changes_nothing(runs, tmp_path, capsys):
    target = tmp_path / "a_file"
    target.write_text("keep me")
    cli_fails(["train", "--out", target, *TRAIN_SMALL], capsys, "a_file", "is a file", "expected a folder")
    assert target.read_text() == "keep me"
    run = _copy_run(runs, "finished")
    before = snapshot(run)
    cli_fails(["train", "--out", run, *TRAIN_SMALL], capsys, "already holds a run", "--resume", "--overwrite")
    assert snapshot(run) == before


# ---------------------------------------------------------------------------------- CLI: evaluate
def test_evaluate_a_missing_or_empty_run_directory(tmp_path, capsys):
    cli_fails(["evaluate", "--checkpoint", tmp_path / "nowhere"], capsys, "nowhere", "expected a run directory")
    (tmp_path / "empty").mkdir()
    cli_fails(["evaluate", "--checkpoint", tmp_path / "empty"], capsys, "no teacher.pt or student.pt")


def test_evaluate_a_teacher_trained_with_another_k(runs, capsys):
    run = _copy_run(runs, "other_k")
    shutil.copy(runs / "k5" / "teacher.pt", run / "teacher.pt")
    cli_fails(["evaluate", "--checkpoint", run, "--device", "cpu"], capsys,
              "other_k/teacher.pt", "different model", "num_atoms: saved 5", "config.json says 12")


def test_evaluate_a_checkpoint_of_another_variant(runs, capsys):
    run = _copy_run(runs, "other_variant")
    cfg = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**cfg, "variant": "reference"}))
    cli_fails(["evaluate", "--checkpoint", run, "--device", "cpu"], capsys,
              "teacher.pt", "variant: saved 'paper'", "says 'reference'")


def test_evaluate_a_truncated_or_swapped_checkpoint(runs, capsys):
    run = _copy_run(runs, "truncated")
    data = (run / "teacher.pt").read_bytes()
    (run / "teacher.pt").write_bytes(data[:len(data) // 3])
    cli_fails(["evaluate", "--checkpoint", run, "--device", "cpu"], capsys,
              "truncated/teacher.pt", "cannot be read", "expected a file written by itespy.train")
    run = _copy_run(runs, "swapped")
    shutil.copy(run / "teacher.pt", run / "student.pt")
    cli_fails(["evaluate", "--checkpoint", run, "--device", "cpu"], capsys,
              "swapped/student.pt", "holds a teacher, expected a student")


def test_evaluate_with_a_corrupt_json_file(runs, capsys):
    run = _copy_run(runs, "bad_json")
    (run / "normalisation.json").write_text("{not json")
    cli_fails(["evaluate", "--checkpoint", run, "--device", "cpu"], capsys,
              "normalisation.json", "cannot be read as JSON")


@pytest.mark.parametrize("flags, fragments", [
    (["--protocol", "mpjpe", "--protocol", "best_metric"], ["--protocol best_metric", "expected names from"]),
    (["--max-test", "0"], ["--max-test 0", "positive number"]),
    (["--data", "kinect:/x"], ["Unknown DATA prefix 'kinect'"]),
    (["--data", "mocap:/nowhere/x.npz"], ["mocap npz", "file not found"]),
    pytest.param(["--device", "cuda:0"], ["CUDA was requested"], marks=NO_CUDA),
    (["--device", "gpu"], ["device", "expected auto, cpu, cuda or cuda:N", "'gpu'"]),
])
def test_evaluate_with_bad_flags(flags, fragments, runs, capsys):
    cli_fails(["evaluate", "--checkpoint", runs / "run", *flags], capsys, *fragments)


def test_data_command_with_bad_inputs(capsys):
    cli_fails(["data", "bogus:x"], capsys, "Unknown DATA prefix 'bogus'")
    cli_fails(["data", "synthetic", "--max-frames", "0"], capsys, "--max-frames 0", "positive")


def test_the_real_command_line_exits_2_without_traceback(npz_files, tmp_path):
    """The same contract through `python -m itespy` (exit status, stderr, nothing on stdout, no --out)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    env.pop("ITESPY_DEBUG", None)
    proc = subprocess.run([sys.executable, "-m", "itespy", "train", "--data", f"mocap:{npz_files['truncated']}",
                           "--out", str(tmp_path / "D"), "--quiet"], capture_output=True, text=True, env=env,
                          timeout=120)
    print(proc.stderr.strip())
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stdout == ""
    assert proc.stderr.startswith("error: mocap npz ") and "cannot be read as an .npz file" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert_absent_or_empty(tmp_path / "D")


# ---------------------------------------------------------------------------- library and notebooks
@pytest.mark.parametrize("args, overrides, fragments", [
    (("huge",), {}, ["profile", "'huge'", "smoke"]),
    (("smoke", "exotic"), {}, ["variant", "'exotic'", "reference"]),
    (("smoke",), {"colour": 3}, ["unknown field(s) ['colour']"]),
    (("smoke",), {"teacher_epochs": 2.5}, ["config.teacher_epochs", "expected an integer", "2.5"]),
    (("smoke",), {"batch_size": "32"}, ["config.batch_size", "expected an integer", "'32'"]),
    (("smoke",), {"max_test": -1}, ["config.max_test", "positive number of poses"]),
    (("smoke",), {"stride": 0}, ["config.stride", "positive integer"]),
    (("smoke",), {"lr": float("nan")}, ["config.lr", "nan"]),
    (("smoke",), {"lambda_kd": -1.0}, ["config.lambda_kd", ">= 0"]),
    (("smoke",), {"use_kd": "yes"}, ["config.use_kd", "True or False"]),
    (("smoke",), {"student": "transformer"}, ["config.student", "'transformer'"]),
    (("smoke",), {"device": "tpu"}, ["config.device", "'tpu'"]),
    (("smoke",), {"data": "kinect:/x"}, ["Unknown DATA prefix 'kinect'"]),
])
def test_make_config_rejects_bad_parameters(args, overrides, fragments):
    with pytest.raises(ValueError) as info:
        make_config(*args, **overrides)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_resolve_device_rejects_unknown_and_unavailable_devices():
    with pytest.raises(ValueError, match="expected auto, cpu, cuda or cuda:N, got 'mps0'"):
        resolve_device("mps0")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA was requested"):
            resolve_device("cuda:1")


def _bad(splits, split, attr, value):
    """A copy of ``splits`` whose ``split`` has ``attr`` replaced (duck-typed, so any shape is possible)."""
    ps = splits[split]
    fields = dict(keypoints_2d=ps.keypoints_2d, poses_3d=ps.poses_3d, meta=ps.meta, name=ps.name)
    return {**splits, split: SimpleNamespace(**{**fields, attr: value})}


@pytest.mark.parametrize("split, attr, make, fragments", [
    ("train", "keypoints_2d", lambda a: np.where(np.arange(a.size).reshape(a.shape) == 7, np.nan, a),
     ["training split", "keypoints_2d", "NaN/inf", "[0, 3, 1]"]),
    ("train", "keypoints_2d", lambda a: np.full_like(a, np.inf), ["training split", "NaN/inf"]),
    ("train", "keypoints_2d", lambda a: a[:, :16], ["training split", "(N, 17, 2)", "(64, 16, 2)"]),
    ("train", "keypoints_2d", lambda a: a[:0], ["training split", "got 0 poses"]),
    ("test", "keypoints_2d", lambda a: a[..., :1], ["test split", "(N, 17, 2)"]),
    ("test", "poses_3d", lambda a: np.where(np.arange(a.size).reshape(a.shape) == 5, np.inf, a),
     ["test split", "poses_3d", "NaN/inf"]),
    ("test", "poses_3d", lambda a: a[:, :15], ["test split", "poses_3d", "15 joints"]),
])
def test_run_experiment_checks_the_data_before_writing(split, attr, make, fragments, splits, tmp_path):
    bad = _bad(splits, split, attr, make(getattr(splits[split], attr)))
    with pytest.raises(ValueError) as info:
        run_experiment(make_config("smoke", **TINY), tmp_path / "D", splits=bad, progress=False)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)
    assert_absent_or_empty(tmp_path / "D")


def test_run_experiment_rejects_an_unknown_stage_and_a_bad_teacher_dir(runs, splits, tmp_path):
    cfg = make_config("smoke", **TINY)
    with pytest.raises(ValueError, match="stage: expected one of"):
        run_experiment(cfg, tmp_path / "D", stage="teachers", splits=splits, progress=False)
    with pytest.raises(FileNotFoundError, match="needs a trained teacher"):
        run_experiment(cfg, tmp_path / "D", stage="student", splits=splits, teacher_dir=tmp_path / "none",
                       progress=False)
    with pytest.raises(CheckpointError, match="num_atoms: saved 5, requested 12"):
        run_experiment(cfg, tmp_path / "D", stage="student", splits=splits, teacher_dir=runs / "k5", progress=False)
    assert_absent_or_empty(tmp_path / "D")


def test_resume_from_an_epoch_checkpoint_of_another_model(runs, splits):
    """The per-epoch checkpoint of a K = 5 teacher cannot seed a K = 12 teacher."""
    cfg = make_config("smoke", **TINY)
    with pytest.raises(CheckpointError, match=r"teacher_last\.pt: it was trained with a different model \(num_atoms"):
        train_teacher(cfg, splits["train"].keypoints_2d, runs / "k5", resume=True, progress=False)
    with pytest.raises(RunDirectoryError, match="different configuration"):
        run_experiment(cfg.replace(seed=1), runs / "run", splits=splits, resume=True, progress=False)


def test_training_and_prediction_check_their_2d_inputs():
    cfg = make_config("smoke", **TINY)
    good = np.random.default_rng(0).normal(0, 0.1, (8, 17, 2)).astype(np.float32)
    with pytest.raises(ValueError, match=r"teacher training data: expected shape \(N, 17, 2\).*\(8, 17, 3\)"):
        train_teacher(cfg, np.zeros((8, 17, 3), np.float32), progress=False)
    with pytest.raises(ValueError, match="got 1 poses; expected at least 2"):
        train_teacher(cfg, good[:1], progress=False)
    teacher = build_teacher(cfg)
    with pytest.raises(ValueError, match="predict: keypoints_2d: got 0 poses"):
        predict(teacher, good[:0], "cpu")
    one_nan = np.where(np.arange(good.size).reshape(good.shape) == 2 * 34 + 10, np.nan, good)
    with pytest.raises(ValueError, match=r"keypoints_2d: contains 1 NaN/inf values \(first at index \[2, 5, 0\]"):
        predict(teacher, one_nan, "cpu")
    with pytest.raises(ValueError, match="predict: the model gave NaN/inf 3D poses.*expected model-space 2D"):
        predict(teacher, good * 1e36, "cpu")


def test_load_model_with_bad_checkpoints(runs, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pt: file not found"):
        load_model(tmp_path / "nowhere.pt", "teacher")
    with pytest.raises(ValueError, match="stage expected 'teacher' or 'student', got 'techer'"):
        load_model(runs / "run" / "teacher.pt", "techer")
    with pytest.raises(CheckpointError, match="holds a student, expected a teacher"):
        load_model(runs / "run" / "student.pt", "teacher")
    torch.save({"weights": 1}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="foreign.pt: expected an itespy checkpoint with 'model' and 'config'"):
        load_model(tmp_path / "foreign.pt", "teacher")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="text.pt: cannot be read"):
        load_model(tmp_path / "text.pt", "teacher")
    state = torch.load(runs / "run" / "teacher.pt", weights_only=False)
    state["config"]["flux_capacitor"] = 1
    torch.save(state, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match=r"future.pt: its configuration cannot be used.*flux_capacitor"):
        load_model(tmp_path / "future.pt", "teacher")


def test_metrics_reject_bad_arrays():
    gt = np.random.default_rng(0).normal(size=(4, 17, 3))
    with pytest.raises(ValueError, match=r"prediction: expected shape \(\.\.\., 17, 3\).*\(4, 16, 3\)"):
        mpjpe(gt[:, :16], gt[:, :16])
    with pytest.raises(ValueError, match=r"prediction \(3, 17, 3\) and ground truth \(4, 17, 3\)"):
        p_mpjpe(gt[:3], gt)
    with pytest.raises(ValueError, match="finite"):
        p_mpjpe(gt, np.where(gt > 2, np.inf, gt))
    with pytest.raises(ValueError, match="no poses; expected at least one"):
        p_mpjpe(gt[:0], gt[:0])


def test_load_splits_with_an_unknown_prefix_is_a_data_error():
    with pytest.raises(DataError, match="Unknown DATA prefix 'hm36'"):
        load_splits("hm36:/data")

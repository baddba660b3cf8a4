"""Training end to end on the embedded synthetic data (smoke size, fixed seeds)."""
import json

import numpy as np
import pytest
import torch

from itespy.config import make_config
from itespy.data import load_splits
from itespy.evaluate import evaluate_flat_baseline, evaluate_model
from itespy.models import build_teacher
from itespy.run import RunDirectoryError, run_experiment
from itespy.checkpoints import load_model
from itespy.devices import resolve_device

CFG = make_config("smoke", data="synthetic", max_train=4096, max_test=256, teacher_epochs=5, student_epochs=2,
                  device="cpu")
MARGIN = 0.9  # a trained teacher must beat the flat pose by at least 10 %


@pytest.fixture(scope="module")
def splits():
    return load_splits("synthetic", seed=0, max_train=CFG.max_train, max_test=CFG.max_test)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, splits):
    out = tmp_path_factory.mktemp("run")
    metrics = run_experiment(CFG, out, splits=splits, progress=False)
    return out, metrics


def test_teacher_learns_well_below_the_untrained_model_and_the_flat_pose(trained, splits):
    out, metrics = trained
    torch.manual_seed(CFG.seed)
    untrained = evaluate_model(build_teacher(CFG), splits["test"])
    flat = evaluate_flat_baseline(splits["test"])
    after = metrics["teacher"]
    print(f"teacher MPJPE (mpjpe_scaled_flip): untrained {untrained['mpjpe_scaled_flip']['mean']:.1f} mm, "
          f"flat {flat['mpjpe_scaled_flip']['mean']:.1f} mm -> trained {after['mpjpe_scaled_flip']['mean']:.1f} mm")
    assert after["teacher_output"] == "lifted"
    for protocol in ("mpjpe_scaled_flip", "p_mpjpe_flip"):
        assert after[protocol]["mean"] < MARGIN * flat[protocol]["mean"], protocol
        assert after[protocol]["mean"] < MARGIN * untrained[protocol]["mean"], protocol


def test_history_shows_validation_spread_and_the_kept_checkpoint(trained):
    out, metrics = trained
    history = json.loads((out / "history_teacher.json").read_text())
    checks = [c for h in history for c in h.get("validation", [])]
    assert [c["step"] for c in checks] == sorted({c["step"] for c in checks})
    assert checks[-1]["spread"] > 0.01  # no collapse: the canonical poses differ across inputs
    kept = history[-1]["kept"]
    assert kept["rule"] == "best_val"
    assert kept["best_val_mpjpe"] == min(c["mpjpe"] for c in checks)
    assert metrics["frames"]["validation"] > 0
    assert metrics["frames"]["train"] + metrics["frames"]["validation"] == CFG.max_train


def test_results_do_not_depend_on_the_ambient_thread_count(tmp_path, splits):
    cfg = CFG.replace(teacher_epochs=1, student_epochs=0, threads=1)
    small = {k: v.subset(np.arange(min(len(v), 512))) for k, v in splits.items()}
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        a = run_experiment(cfg, tmp_path / "a", stage="teacher", splits=small, progress=False)
        assert torch.get_num_threads() == 2  # restored after the run
        torch.set_num_threads(1)
        b = run_experiment(cfg, tmp_path / "b", stage="teacher", splits=small, progress=False)
    finally:
        torch.set_num_threads(before)
    assert a["teacher"]["mpjpe_scaled_flip"] == b["teacher"]["mpjpe_scaled_flip"]


def test_smoke_teacher_beats_the_flat_pose_on_bandai(tmp_path, bandai_dir):
    cfg = make_config("smoke", data=f"mocap:{bandai_dir / 'bandai_h36m17.npz'}", student_epochs=0, device="cpu")
    metrics = run_experiment(cfg, tmp_path / "bandai", stage="teacher", progress=False)
    flat = evaluate_flat_baseline(load_splits(cfg.data, seed=cfg.seed, max_train=cfg.max_train,
                                              max_test=cfg.max_test)["test"])
    for protocol in ("mpjpe_scaled_flip", "p_mpjpe_flip"):
        print(protocol, metrics["teacher"][protocol]["mean"], flat[protocol]["mean"])
        assert metrics["teacher"][protocol]["mean"] < MARGIN * flat[protocol]["mean"], protocol


def test_student_training_loss_falls_and_files_exist(trained):
    out, metrics = trained
    history = json.loads((out / "history_student.json").read_text())
    assert history[-1]["loss_total"] < history[0]["loss_total"]
    for name in ("config.json", "run_info.json", "normalisation.json", "teacher.pt", "student.pt", "metrics.json"):
        assert (out / name).exists(), name
    assert np.isfinite(metrics["student"]["p_mpjpe_flip"]["mean"])


def test_checkpoint_round_trip_gives_identical_outputs(trained, splits):
    out, _ = trained
    x = torch.as_tensor(splits["test"].keypoints_2d[:16])
    for stage in ("teacher", "student"):
        m1, cfg1 = load_model(out / f"{stage}.pt", stage)
        m2, _ = load_model(out / f"{stage}.pt", stage)
        with torch.no_grad():
            assert torch.equal(m1(x)["pose_3d"], m2(x)["pose_3d"])
        assert cfg1 == CFG


def test_finished_run_is_not_overwritten_and_resume_returns_it(trained, splits):
    out, metrics = trained
    with pytest.raises(RunDirectoryError, match="already holds a run"):
        run_experiment(CFG, out, splits=splits, progress=False)
    again = run_experiment(CFG, out, splits=splits, resume=True, progress=False)
    assert again == metrics
    # the folder's rule is its key's: a field that does not change the result (RUN_FIELDS) is the same run
    assert run_experiment(CFG.replace(eval_batch_size=7), out, splits=splits, resume=True, progress=False) == metrics


def test_resume_continues_from_the_last_epoch_and_matches_an_uninterrupted_run(tmp_path, splits):
    cfg = CFG.replace(teacher_epochs=2, student_epochs=0, max_train=512)
    small = {k: v.subset(np.arange(min(len(v), 512))) for k, v in splits.items()}
    full = run_experiment(cfg, tmp_path / "full", stage="teacher", splits=small, progress=False)
    # interrupted: only the first epoch, then resume to two
    run_experiment(cfg.replace(teacher_epochs=1), tmp_path / "cut", stage="teacher", splits=small, progress=False)
    (tmp_path / "cut" / "teacher.pt").unlink()
    (tmp_path / "cut" / "metrics.json").unlink()
    cfg_json = json.loads((tmp_path / "cut" / "config.json").read_text())
    cfg_json["teacher_epochs"] = 2
    (tmp_path / "cut" / "config.json").write_text(json.dumps(cfg_json))
    resumed = run_experiment(cfg, tmp_path / "cut", stage="teacher", splits=small, resume=True, progress=False)
    history = json.loads((tmp_path / "cut" / "history_teacher.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    assert resumed["teacher"]["mpjpe_scaled_flip"]["mean"] == full["teacher"]["mpjpe_scaled_flip"]["mean"]


def test_same_seed_same_numbers_on_cpu(tmp_path, splits):
    cfg = CFG.replace(teacher_epochs=1, student_epochs=0)
    small = {k: v.subset(np.arange(256)) for k, v in splits.items()}
    a = run_experiment(cfg, tmp_path / "a", stage="teacher", splits=small, progress=False)
    b = run_experiment(cfg, tmp_path / "b", stage="teacher", splits=small, progress=False)
    assert a["teacher"]["mpjpe_scaled_flip"] == b["teacher"]["mpjpe_scaled_flip"]


def test_cuda_request_without_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(RuntimeError, match="CUDA was requested"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def test_a_teacher_folder_is_reused_when_only_student_settings_change(tmp_path, splits):
    """Notebook 03 trains into teacher-<key>, keyed by the teacher's settings only: a re-run after a student
    setting changed (kd_norm, student_channels, ...) finds the same folder and must reuse it, not refuse it."""
    cfg = CFG.replace(teacher_epochs=1, student_epochs=0, max_train=256)
    small = {k: v.subset(np.arange(256)) for k, v in splits.items()}
    first = run_experiment(cfg, tmp_path / "t", stage="teacher", splits=small, progress=False)
    again = run_experiment(cfg.replace(kd_norm="l1" if cfg.kd_norm == "squared" else "squared", student_channels=32),
                           tmp_path / "t", stage="teacher", splits=small, resume=True, progress=False)
    assert again == first
    with pytest.raises(RunDirectoryError, match="num_atoms"):  # a teacher setting still counts
        run_experiment(cfg.replace(num_atoms=4), tmp_path / "t", stage="teacher", splits=small, resume=True,
                       progress=False)


def test_stage_two_has_its_own_weight_decay_and_decay_period_when_set():
    from itespy.train import make_optimizer
    cfg = make_config("smoke", student_weight_decay=0.0, student_lr_decay_every=2, student_lr=0.004)
    net = torch.nn.Linear(2, 2)
    teacher_opt, teacher_sched = make_optimizer(cfg, net, "teacher")
    student_opt, student_sched = make_optimizer(cfg, net, "student")
    assert teacher_opt.param_groups[0]["weight_decay"] == cfg.weight_decay > 0
    assert student_opt.param_groups[0]["weight_decay"] == 0.0
    assert teacher_opt.param_groups[0]["lr"] == cfg.lr != 0.004 and student_opt.param_groups[0]["lr"] == 0.004
    assert make_optimizer(cfg.replace(student_lr=None), net, "student")[0].param_groups[0]["lr"] == cfg.lr
    assert student_sched.step_size == 2 and teacher_sched.step_size > 10 ** 6
    with pytest.raises(ValueError, match="student_weight_decay"):
        make_config("smoke", student_weight_decay=-1.0)
    with pytest.raises(ValueError, match="student_lr"):
        make_config("smoke", student_lr=0.0)

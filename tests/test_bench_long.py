"""bench/teacher_long.py, the long-run diagnostics of docs/paper_vs_code.md ("Long teacher runs"), on a few
steps of synthetic data: every check holds both protocols, the mirror share and the depth ratio, and the
JSON is written."""
import json
import sys

import pytest

from itespy.reproduce.paths import REPO

sys.path.insert(0, str(REPO / "bench"))
teacher_long = pytest.importorskip("teacher_long")
long_summary = pytest.importorskip("long_summary")


def test_teacher_long_records_the_diagnostics(tmp_path):
    out = tmp_path / "run.json"
    teacher_long.main(["--data", "synthetic", "--profile", "smoke", "--max-train", "1024", "--steps", "4",
                       "--eval-every", "2", "--set", "teacher_hidden=64", "teacher_bottleneck=16",
                       "teacher_blocks=1", "max_test=256", "--out", str(out)])
    run = json.loads(out.read_text())
    assert [r["step"] for r in run["records"]] == [2, 4]
    for r in run["records"]:
        for split in ("val", "test", "val_bnreal"):
            s = r[split]
            assert s["mpjpe"] <= s["mpjpe_nomirror"] + 1e-9 and s["p_mpjpe"] <= s["p_mpjpe_nomirror"] + 1e-9
            assert 0.0 <= s["mirror"] <= 1.0 and s["depth_ratio"] >= 0.0
        assert r["loss_rep"] > 0 and r["loss_ric"] > 0 and r["canonical_scale"] > 0
    assert run["flat"]["val"]["depth_ratio"] == 0.0 and 0.2 < run["gt_depth_ratio"]["val"] < 0.8
    assert "t      4" in long_summary.line(run["records"][-1])


def test_joint_signs_names_the_joints_whose_depth_sign_is_wrong():
    joint_signs = pytest.importorskip("joint_signs")
    import numpy as np

    from itespy.data import load_splits
    poses = load_splits("synthetic", seed=0, max_train=2, max_test=64)["test"].poses_3d.astype(np.float64)
    right = joint_signs.sign_errors(poses.copy(), poses)
    assert right["wrong_sign_all_joints"] == 0.0 and right["mirror_rate"] == 0.0
    arms = [joint_signs.JOINT_NAMES.index(n) for n in ("LElbow", "LWrist", "RElbow", "RWrist")]
    pred = poses - poses[:, :1]
    pred[:, arms, 2] *= -1  # the arms' depths mirrored about the hip, the rest right
    wrong = joint_signs.sign_errors(pred, poses)
    counted = np.abs(poses[:, arms, 2] - poses[:, :1, 2]) > joint_signs.MIN_DEPTH_MM
    for name, column in zip(("LElbow", "LWrist", "RElbow", "RWrist"), counted.T):
        assert wrong["per_joint"][name] == (1.0 if column.any() else 0.0)
    assert wrong["per_joint"]["Head"] == 0.0 and wrong["per_joint"]["LKnee"] == 0.0


def test_student_gain_is_teacher_minus_student_at_each_student_check(tmp_path):
    student_gain_plot = pytest.importorskip("student_gain_plot")
    test = lambda m, p: {"test": {"mpjpe": m, "p_mpjpe": p}}  # noqa: E731
    run = {"teacher_kept": test(50.0, 35.0), "teacher_kept_step": 100, "flat": test(88.0, 66.0),
           "records": [{"stage": "teacher", "step": 100, **test(50.0, 35.0)},
                       {"stage": "student", "step": 10, **test(55.0, 36.0)},
                       {"stage": "student", "step": 20, **test(46.0, 33.5)}]}
    gains = student_gain_plot.student_gains(run)
    assert [g[0] for g in gains] == [10, 20]
    assert gains[0][2] == {"mpjpe": -5.0, "p_mpjpe": -1.0} and gains[1][2] == {"mpjpe": 4.0, "p_mpjpe": 1.5}
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run))
    student_gain_plot.main([str(path), "--plot", str(tmp_path / "gain.png")])
    assert (tmp_path / "gain.png").stat().st_size > 0


def test_precise_bn_recomputes_the_statistics_on_a_copy_and_ema_moves_towards_the_model():
    import torch
    student_bn_check = pytest.importorskip("student_bn_check")
    records = pytest.importorskip("records")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    inputs = torch.randn(512, 3) * 2 + 5
    before = model[1].running_mean.clone()
    fresh = records.precise_bn(model, inputs, batch_size=128, batches=4)
    assert torch.equal(model[1].running_mean, before) and model.training  # the original is untouched
    with torch.no_grad():
        features = model[0](inputs)
    # 4 batches of 128 cover the 512 inputs once: the cumulative average is their mean
    torch.testing.assert_close(fresh[1].running_mean, features.mean(0), rtol=1e-5, atol=1e-5)
    assert not fresh.training
    average = torch.nn.Linear(2, 1)
    target = torch.nn.Linear(2, 1)
    with torch.no_grad():
        average.weight.fill_(0.0)
        target.weight.fill_(1.0)
    student_bn_check.ema_update(average, target, decay=0.75)
    torch.testing.assert_close(average.weight, torch.full((1, 2), 0.25))


def test_the_frozen_cycle_leaves_running_statistics_alone_and_restores_momentum():
    import torch
    student_bn_check = pytest.importorskip("student_bn_check")
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    calls = []

    def cycle(student, x):
        calls.append(student(x))
        return calls[-1].sum()
    before = model[1].running_mean.clone()
    student_bn_check.cycle_without_running_stats(cycle)(model, torch.randn(16, 3) + 3)
    assert torch.equal(model[1].running_mean, before) and model[1].momentum == 0.1 and calls
    model(torch.randn(16, 3) + 3)  # an ordinary pass still updates them
    assert not torch.equal(model[1].running_mean, before)


def test_student_bn_plot_draws_every_file_and_refuses_none(tmp_path):
    student_bn_check = pytest.importorskip("student_bn_check")
    check = {"mpjpe": 60.0, "p_mpjpe": 40.0}
    record = {"student_lr": 0.002, "freeze_cycle_bn": False, "teacher_val_mpjpe": 58.0,
              "checks": [{"step": s, "as_is": check, "bn": check, "ema_bn": check} for s in (50, 100)]}
    path = tmp_path / "a.json"
    path.write_text(json.dumps(record))
    student_bn_check.plot(str(tmp_path / "a.png"), [str(path), str(path)])
    assert (tmp_path / "a.png").stat().st_size > 0
    with pytest.raises(ValueError, match="at least one"):
        student_bn_check.plot(str(tmp_path / "b.png"), [])


def _teacher_line(seed, epochs, mpjpe, p_mpjpe, seconds=100):
    overrides = {"seed": seed, **({"teacher_epochs": epochs} if epochs != 6 else {})}
    return {"profile": "tutorial", "data": "synthetic", "overrides": overrides, "warmup": 0, "camera": "six_d",
            "seconds": seconds, "mpjpe_scaled_flip": mpjpe, "p_mpjpe_flip": p_mpjpe}


def _student_line(seed, teacher, student, overrides, seconds=200, recipe=None):
    from itespy.config import STUDENT_FIELDS, make_config
    cfg = make_config("tutorial").replace(**overrides)
    return {"seed": seed, "overrides": overrides, "seconds": seconds,
            "student_recipe": recipe or {k: getattr(cfg, k) for k in STUDENT_FIELDS},
            "teacher": {"test": {"mpjpe_scaled_flip": teacher[0], "p_mpjpe_flip": teacher[1]}},
            "student": {"test": {"mpjpe_scaled_flip": student[0], "p_mpjpe_flip": student[1]}}}


def test_student_budget_joins_students_to_their_teachers_and_weighs_the_gain(tmp_path):
    student_budget = pytest.importorskip("student_budget")
    long17 = {"student_epochs": 17, "student_lr_decay_every": 6}
    teachers = [_teacher_line(0, 6, 50.0, 35.0), _teacher_line(1, 6, 48.0, 34.0),
                _teacher_line(0, 12, 47.0, 34.0, 250), _teacher_line(1, 12, 46.0, 33.0, 250)]
    # a line written before student_lr existed: the run's lr (2e-3) reached the student only
    from itespy.config import STUDENT_FIELDS, make_config
    old_recipe = {k: getattr(make_config("tutorial"), k) for k in STUDENT_FIELDS if k != "student_lr"}
    students = [_student_line(0, (50.0, 35.0), (49.0, 34.0), {"lr": 0.002}, recipe=old_recipe),
                _student_line(1, (48.0, 34.0), (48.5, 34.5), {}),
                _student_line(0, (47.0, 34.0), (45.0, 33.0), long17, 450),
                _student_line(1, (46.0, 33.0), (44.0, 32.0), long17, 450),
                _student_line(1, (46.0, 33.0), (40.0, 30.0), {"student_epochs": 3}),  # another recipe
                _student_line(1, (99.0, 33.0), (40.0, 30.0), long17)]  # another teacher
    (tmp_path / "s.jsonl").write_text("\n".join(json.dumps(x) for x in students) + "\n")
    (tmp_path / "t.jsonl").write_text("\n".join(json.dumps(x) for x in teachers) + "\n")
    out, png = tmp_path / "budget.json", tmp_path / "budget.png"
    summary = student_budget.main(["--cell", "profile", "6", "{}", "--cell", "long", "12", json.dumps(long17),
                                   "--data", "synthetic", "--students", str(tmp_path / "s.jsonl"),
                                   "--teachers", str(tmp_path / "t.jsonl"), "--out", str(out), "--plot", str(png)])
    profile, long = summary["cells"]
    assert sorted(profile["seeds"]) == [0, 1] and sorted(long["seeds"]) == [0, 1]
    assert profile["seeds"][0]["gain"] == {"mpjpe_scaled_flip": 1.0, "p_mpjpe_flip": 1.0}
    assert profile["seeds"][1]["gain"] == {"mpjpe_scaled_flip": -0.5, "p_mpjpe_flip": -0.5}
    assert long["mean_gain"] == {"mpjpe_scaled_flip": 2.0, "p_mpjpe_flip": 1.0}
    assert long["noise"]["mpjpe_scaled_flip"] == pytest.approx(1.0, abs=0.01)  # hypot(0.71, 0.71)
    assert long["gain_std"]["mpjpe_scaled_flip"] == 0.0  # both seeds gain 2.0: the teachers' spread cancels
    assert profile["gain_std"]["mpjpe_scaled_flip"] == pytest.approx(1.06, abs=0.01)  # gains 1.0 and -0.5
    assert long["pair_seconds"] == 700 and profile["pair_seconds"] == 300
    assert json.loads(out.read_text())["cells"][1]["label"] == "long" and png.stat().st_size > 0
    students.append(_student_line(1, (46.0, 33.0), (44.5, 32.0), long17))  # the same recipe, another result
    (tmp_path / "s.jsonl").write_text("\n".join(json.dumps(x) for x in students) + "\n")
    with pytest.raises(ValueError, match="disagree"):
        student_budget.main(["--cell", "long", "12", json.dumps(long17), "--data", "synthetic",
                             "--students", str(tmp_path / "s.jsonl"), "--teachers", str(tmp_path / "t.jsonl")])

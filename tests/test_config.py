"""Configuration keys: equal keys mean equal trainings; what a stage does not read does not change its key."""
import pytest

from itespy.config import RUN_FIELDS, STUDENT_FIELDS, config_key, make_config, teacher_config
from itespy.run import keyed_run_dir


def test_student_fields_do_not_change_the_teachers_key():
    cfg = make_config("smoke")
    other_student = cfg.replace(student_epochs=9, lambda_kd=1.0, graph="physical")
    assert config_key(cfg, "teacher") == config_key(other_student, "teacher")
    assert config_key(cfg) != config_key(other_student)
    assert teacher_config(other_student).student_epochs == teacher_config(cfg).student_epochs


def test_run_fields_never_change_a_key_and_result_fields_always_do():
    cfg = make_config("smoke")
    assert set(RUN_FIELDS) & set(STUDENT_FIELDS) == set()
    assert config_key(cfg) == config_key(cfg.replace(device="cuda", eval_batch_size=7))
    for change in (dict(seed=1), dict(lr=2e-3), dict(threads=2), dict(max_train=100)):
        assert config_key(cfg, "teacher") != config_key(cfg.replace(**change), "teacher"), change
    with pytest.raises(ValueError, match="stage"):
        config_key(cfg, "bogus")


def test_keyed_run_dir_gives_one_folder_per_configuration(tmp_path):
    cfg = make_config("smoke")
    teacher_dir = keyed_run_dir(tmp_path, cfg, "teacher")
    assert teacher_dir.parent == tmp_path and teacher_dir.name.startswith("teacher-")
    assert keyed_run_dir(tmp_path, cfg.replace(student_epochs=9), "teacher") == teacher_dir
    assert keyed_run_dir(tmp_path, cfg.replace(seed=1), "teacher") != teacher_dir
    assert keyed_run_dir(tmp_path, cfg) != keyed_run_dir(tmp_path, cfg.replace(student_epochs=9))


def test_train_warns_when_the_one_rotation_axis_angle_teacher_sees_more_poses_than_measured():
    from itespy.config import ONE_ROTATION_TESTED_POSES, one_rotation_warning
    tutorial = make_config("tutorial")
    assert tutorial.cycle_copies == 1 and tutorial.camera == "six_d"
    assert one_rotation_warning(tutorial.replace(max_train=None), "both") is None  # the 6D head learnt on all poses
    axis_angle = tutorial.replace(camera="axis_angle")
    assert one_rotation_warning(axis_angle, "both") is None  # measured on the profile's 30,000 poses
    everything = axis_angle.replace(max_train=None)
    assert "camera=six_d" in one_rotation_warning(everything, "teacher")
    assert one_rotation_warning(everything, "student") is None  # no teacher trains
    assert one_rotation_warning(axis_angle.replace(max_train=ONE_ROTATION_TESTED_POSES + 1), "both")
    assert one_rotation_warning(make_config("paper"), "both") is None  # four rotations

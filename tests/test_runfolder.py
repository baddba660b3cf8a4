"""RunFolder: one owner of a run directory -- its identity rule (the same as the folder's key), refusing another
run's folder, per-epoch states with a fallback, histories, normalisation and loading what a run holds."""
import pytest
import torch

from itespy.config import RUN_FIELDS, config_key, make_config
from itespy.runfolder import RunDirectoryError, RunFolder, changed_fields, keyed_run_dir

CFG = make_config("smoke")


def test_the_identity_rule_is_the_keys_rule(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.prepare(CFG, resume=False, overwrite=False)
    for field in RUN_FIELDS:  # what the key ignores, the folder ignores
        other = CFG.replace(**{field: {"device": "cuda", "eval_batch_size": 7, "extra": {"note": 1}}[field]})
        assert config_key(other) == config_key(CFG) and folder.holds(other), field
    for change in (dict(seed=1), dict(lr=2e-3), dict(student_epochs=9)):
        assert config_key(CFG.replace(**change)) != config_key(CFG) and not folder.holds(CFG.replace(**change))
    # a teacher-only folder serves every student configuration, as the teacher's key does
    assert folder.holds(CFG.replace(student_epochs=9), "teacher")
    assert changed_fields(folder.saved_config(), CFG.replace(seed=3, num_atoms=4)) == ["num_atoms", "seed"]


def test_prepare_refuses_another_runs_folder_and_a_file(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.prepare(CFG, resume=False, overwrite=False)
    with pytest.raises(RunDirectoryError, match="already holds a run"):
        folder.prepare(CFG, resume=False, overwrite=False)
    with pytest.raises(RunDirectoryError, match=r"different configuration \(fields \['seed'\]\)"):
        folder.prepare(CFG.replace(seed=5), resume=True, overwrite=False)
    folder.prepare(CFG.replace(eval_batch_size=7), resume=True, overwrite=False)  # the same run
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirectoryError, match="is a file"):
        RunFolder(tmp_path / "file").prepare(CFG, resume=False, overwrite=False)


def test_stored_metrics_only_for_the_same_finished_run(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.prepare(CFG, resume=False, overwrite=False)
    assert folder.stored_metrics(CFG) is None
    folder.write_metrics({"teacher": {"x": 1}})
    assert folder.stored_metrics(CFG) is None  # stage 'both' needs the student too
    assert folder.stored_metrics(CFG, "teacher") == {"teacher": {"x": 1}}
    assert folder.stored_metrics(CFG.replace(seed=2), "teacher") is None


def test_epoch_states_fall_back_to_the_previous_one(tmp_path):
    folder = RunFolder(tmp_path)
    assert folder.latest_epoch_state("teacher") is None
    for epoch in (0, 1):
        folder.save_epoch_state("teacher", {"epoch": epoch, "model": {}, "config": CFG.to_dict()})
    path, state = folder.latest_epoch_state("teacher")
    assert path.name == "teacher_last.pt" and state["epoch"] == 1
    path.write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="Falling back to the previous checkpoint"):
        path, state = folder.latest_epoch_state("teacher")
    assert path.name == "teacher_prev.pt" and state["epoch"] == 0


def test_histories_normalisation_and_models(tmp_path):
    from itespy.models import build_teacher
    folder = RunFolder(keyed_run_dir(tmp_path, CFG))
    with pytest.raises(FileNotFoundError, match="not found"):
        folder.load_models()
    folder.prepare(CFG, resume=False, overwrite=False)
    with pytest.raises(FileNotFoundError, match="no teacher.pt or student.pt"):
        folder.load_models()
    assert folder.history("teacher") is None and folder.normalisation() == {} and folder.training_scale() is None
    folder.save_history("teacher", [{"epoch": 1}])
    folder.write_normalisation({"scale": 0.25})
    assert folder.history("teacher") == [{"epoch": 1}] and folder.training_scale() == 0.25
    torch.manual_seed(0)
    teacher = build_teacher(CFG)
    folder.save_model("teacher", teacher, CFG)
    models, cfg = folder.load_models()
    assert list(models) == ["teacher"] and cfg == CFG
    assert all(torch.equal(a, b) for a, b in zip(models["teacher"].state_dict().values(),
                                                 teacher.state_dict().values()))
    assert RunFolder(folder).path == folder.path

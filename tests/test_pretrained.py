"""The models that ship with the kit (itespy.pretrained) and their compressed checkpoint format."""
import json

import pytest
import torch

from itespy import pretrained
from itespy.checkpoints import (INT8_ROWS, CheckpointError, compress_state_dict, decompress_state_dict,
                                load_model, save_model)
from itespy.cli import main
from itespy.config import make_config
from itespy.models import build_student, build_teacher



def test_int8_rows_restore_each_weight_within_half_a_step():
    torch.manual_seed(0)
    state = {"big": torch.randn(64, 128), "small": torch.randn(8), "mask": torch.randn(4, 17, 17)}
    packed = compress_state_dict(state)
    assert packed["big"]["q"].dtype == torch.int8 and packed["small"].dtype == torch.float32
    restored = decompress_state_dict(packed)
    step = state["big"].abs().amax(dim=1, keepdim=True) / 127
    assert torch.all((restored["big"] - state["big"]).abs() <= step / 2 + 1e-7)
    assert torch.equal(restored["small"], state["small"])


def test_a_compressed_teacher_loads_and_predicts_as_the_float_one(tmp_path):
    cfg = make_config("smoke")
    torch.manual_seed(0)
    teacher = build_teacher(cfg).eval()
    save_model(tmp_path / "teacher.pt", teacher, cfg, "teacher")
    state = torch.load(tmp_path / "teacher.pt", weights_only=False)
    torch.save({**state, "model": compress_state_dict(state["model"]), "weights_format": INT8_ROWS},
               tmp_path / "small.pt")
    assert (tmp_path / "small.pt").stat().st_size < 0.4 * (tmp_path / "teacher.pt").stat().st_size
    loaded, _ = load_model(tmp_path / "small.pt", "teacher")
    x = torch.randn(32, 17, 2) * 0.2
    with torch.no_grad():
        a, b = teacher(x)["pose_3d"], loaded(x)["pose_3d"]
    assert (a - b).abs().max() < 0.02 * a.abs().max()


def test_an_unknown_weights_format_is_refused_by_name(tmp_path):
    cfg = make_config("smoke")
    save_model(tmp_path / "student.pt", build_student(cfg), cfg, "student", extra={"weights_format": "int3"})
    with pytest.raises(CheckpointError, match="int3"):
        load_model(tmp_path / "student.pt", "student")


def test_resolve_names_the_shipped_models_and_passes_other_paths_through(tmp_path):
    assert pretrained.resolve(str(tmp_path)) == tmp_path
    with pytest.raises(FileNotFoundError, match="no shipped model named 'nope'"):
        pretrained.resolve("pretrained:nope")
    assert pretrained.resolve("pretrained") == pretrained.PRETRAINED_ROOT / pretrained.DEFAULT_NAME


def test_export_refuses_an_unfinished_run_and_leaves_nothing_behind(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(FileNotFoundError, match="student.pt"):
        pretrained.export(tmp_path / "run", "x", "# x", root=tmp_path / "root")
    assert not (tmp_path / "root" / "x").exists()


def test_export_writes_a_small_model_whose_metrics_it_re_measures(tmp_path):
    cfg = make_config("smoke", max_test=256)
    torch.manual_seed(0)
    run = tmp_path / "run"
    run.mkdir()
    save_model(run / "teacher.pt", build_teacher(cfg), cfg, "teacher")
    save_model(run / "student.pt", build_student(cfg), cfg, "student")
    (run / "config.json").write_text(cfg.to_json())
    (run / "normalisation.json").write_text(json.dumps({"scale": 1.0}))
    record = pretrained.export(run, "tiny", "# tiny\n", root=tmp_path / "root")
    shipped = tmp_path / "root" / "tiny"
    assert sorted(p.name for p in shipped.iterdir()) == ["README.md", "config.json", "metrics.json",
                                                        "normalisation.json", "student.pt", "teacher.pt"]
    # a folder from `itespy train` also has the histories; they travel with the model when present
    assert torch.load(shipped / "teacher.pt", weights_only=False)["weights_format"] == INT8_ROWS
    assert record["test_poses"] == 256 and set(record["metrics"]) == {"teacher", "student"}
    with pytest.raises(FileExistsError):
        pretrained.export(run, "tiny", "# tiny\n", root=tmp_path / "root")


@pytest.mark.parametrize("name", pretrained.available())
def test_each_shipped_model_is_small_loads_and_reproduces_its_recorded_metrics(name, request):
    path = pretrained.PRETRAINED_ROOT / name
    assert all(p.stat().st_size <= pretrained.MAX_FILE_BYTES for p in path.iterdir())
    recorded = json.loads((path / "metrics.json").read_text())
    data = recorded["data"]
    if data.startswith("mocap:"):
        data = f"mocap:{request.getfixturevalue('bandai_dir') / 'bandai_h36m17.npz'}"  # skips without it
    result = pretrained.check(name, data)
    for stage, rec in result["recorded"].items():
        for k in pretrained.PROTOCOLS:
            assert result["measured"][stage][k] == pytest.approx(rec[k], abs=pretrained.CHECK_TOLERANCE_MM)


def test_at_least_one_shipped_model_needs_no_data_to_check():
    datas = [json.loads((pretrained.PRETRAINED_ROOT / n / "metrics.json").read_text())["data"]
             for n in pretrained.available()]
    assert "synthetic" in datas, f"shipped models: {pretrained.available()} on {datas}"


def test_cli_lists_the_shipped_models(capsys):
    assert main(["pretrained", "list"]) == 0
    out = capsys.readouterr().out
    for name in pretrained.available():
        assert f"pretrained:{name}" in out

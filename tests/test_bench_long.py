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

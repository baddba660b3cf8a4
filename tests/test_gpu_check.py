"""bench/gpu_check.py in its CPU form (what CI runs, so the GPU script cannot rot): every step runs and its
figures land in one JSON."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_gpu_check_runs_in_its_cpu_form(tmp_path):
    r = subprocess.run([sys.executable, "bench/gpu_check.py", "--device", "cpu", "--small", "--out", str(tmp_path)],
                       cwd=REPO, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    check = json.loads((tmp_path / "check.json").read_text())
    assert {k: v["status"] for k, v in check["steps"].items()} == dict.fromkeys(
        ["environment", "tests", "roofline", "steps", "notebooks"], "ok"), json.dumps(check, indent=1)[:3000]
    assert check["steps"]["tests"]["result"]["returncode"] == 0  # the CPU cases of tests/test_cuda.py pass
    assert check["steps"]["roofline"]["result"]["json"] == "roofline_cpu_gpu_check.json"
    figures = check["steps"]["steps"]["result"]["figures"]
    assert {(f["stage"], f["batch"]) for f in figures} == {("teacher", 128), ("student", 128)}
    assert all(f["steps_per_s"] > 0 for f in figures)
    hours = check["steps"]["steps"]["result"]["paper_profile_hours"]
    assert hours["one_training"] == pytest.approx(hours["teacher"] + hours["student"], abs=0.011)
    assert [n["status"] for n in check["steps"]["notebooks"]["result"]] == ["ok"]

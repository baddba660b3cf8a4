"""The reproduction runner (itespy.reproduce): cached jobs, row units, notebooks via papermill, results.json,
REPORT.md, resume, failing notebooks and the output-directory lock.

Every run here uses TINY overrides (networks of a few thousand parameters, 64 poses, one epoch): the
numbers are meaningless, the files and the bookkeeping are what is tested."""
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from itespy import experiments as ex
from itespy import reproduce as rp

REPO = Path(__file__).resolve().parents[1]
TINY = {**ex.QUICK_OVERRIDES, "max_train": 64, "max_test": 32, "batch_size": 32, "teacher_hidden": 32,
        "teacher_bottleneck": 16, "teacher_blocks": 1, "student_channels": 8, "student_blocks": 2}
RECORD_KEYS = {"table", "row", "label", "metric", "protocol", "unit", "kit", "paper", "delta", "seed", "profile",
               "variant", "data", "model", "status", "note", "time", "seconds", "overrides", "code_version"}


@pytest.fixture(scope="module", autouse=True)
def pinned_code_version():
    """Pin the code version (also for the notebook kernels, which inherit the environment): the working
    tree may be edited while these tests run, and an edit would rightly invalidate every cached model."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ITESPY_CODE_VERSION", "tests-" + rp.source_hash())
        yield


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One model cache for the module, so a configuration is trained once across tests."""
    return tmp_path_factory.mktemp("cache")


def _mtimes(cache: Path) -> dict:
    return {p: p.stat().st_mtime_ns for p in cache.glob("*/metrics.json")}


def test_rows_share_cached_models(tmp_path, shared_cache):
    kw = dict(profile="smoke", device="cpu", cache_dir=shared_cache, rows_dir=tmp_path / "rows", overrides=TINY)
    # Table 7's ResFC row and Table 3's REP + RIC row are both the default teacher: one training
    a = rp.run_row("T7", "resfc", **kw)
    before = _mtimes(shared_cache)
    b = rp.run_row("T3", "rep_ric", **kw)
    assert _mtimes(shared_cache) == before
    assert a[0]["jobs"] == b[0]["jobs"] and a[0]["kit"] == b[0]["kit"]
    assert {r["metric"] for r in a} == {"MPJPE", "P-MPJPE"} and RECORD_KEYS <= set(a[0])
    # a student of Table 8 reuses the same teacher; only the student is new
    c = rp.run_row("T8", "physical", **kw)
    assert len(_mtimes(shared_cache)) == len(before) + 1 and c[0]["model"] == "student"
    stored = json.loads((tmp_path / "rows" / "T8" / "physical" / "seed0.json").read_text())
    assert stored["records"] == c
    # a new force token retrains, the same token does not
    rp.run_row("T7", "resfc", **kw, force_token="tok1")
    after = _mtimes(shared_cache)
    assert after[next(iter(before))] != before[next(iter(before))]
    rp.run_row("T3", "rep_ric", **kw, force_token="tok1")
    assert _mtimes(shared_cache) == after


def test_skipped_cost_and_dev_data_rows(tmp_path, shared_cache):
    kw = dict(profile="smoke", device="cpu", cache_dir=shared_cache, rows_dir=tmp_path / "rows", overrides=TINY)
    img = rp.run_row("T1", "ites_t_img", **kw)
    assert {r["status"] for r in img} == {"skipped"} and "h36m" in img[0]["note"] and img[0]["kit"] is None
    cost = {r["metric"]: r for r in rp.run_row("T9", "ites_ts", **kw)}
    assert cost["params"]["kit"] > 0 and cost["ms"]["kit"] > 0 and cost["params"]["paper"] == 7.27
    pck = rp.run_row("T2", "ites_t", **kw)
    assert "no MPI-INF-3DHP data" in pck[0]["note"] and 0 <= pck[0]["kit"] <= 100


def test_row_errors_are_recorded_and_the_table_goes_on(tmp_path, shared_cache, monkeypatch):
    real = rp.ensure_student

    def broken(cfg, *a, **k):
        if cfg.graph == "physical":
            raise FloatingPointError("loss became nan")
        return real(cfg, *a, **k)
    monkeypatch.setattr(rp.rows, "ensure_student", broken)
    records = rp.run_table("T8", profile="smoke", device="cpu", out_dir=tmp_path, cache_dir=shared_cache,
                           overrides=TINY, log=None)
    status = {r["row"]: r["status"] for r in records}
    assert status == {"physical": "error", "nonphysical": "ok", "both": "ok"}
    assert "FloatingPointError" in next(r["note"] for r in records if r["row"] == "physical")
    assert (tmp_path / "rows" / "T8" / "physical" / "seed0.error.json").exists()
    assert {r["status"] for r in rp.load_records(tmp_path) if r["row"] == "physical"} == {"error"}


def test_reproduce_two_tables_then_resume(tmp_path, shared_cache):
    out = tmp_path / "out"
    result = rp.reproduce(profile="smoke", only="T3,T8", device="cpu", out=out, overrides=TINY,
                          cache_dir=shared_cache, log=lambda *a: None)
    assert not result["failed"], result["notebooks"]
    data = json.loads((out / "results.json").read_text())
    assert data["format"] == rp.RESULTS_FORMAT
    recs = data["records"]
    assert {(r["table"], r["row"]) for r in recs} == {("T3", r) for r in ex.TABLES["T3"].row_ids} | \
        {("T8", r) for r in ex.TABLES["T8"].row_ids}
    for r in recs:
        assert RECORD_KEYS <= set(r) and r["status"] == "ok" and isinstance(r["kit"], float)
        assert r["protocol"] == ex.METRICS[r["metric"]].protocol and r["profile"] == "smoke"
        # the same error without the depth mirror (never better than with it), and how often the mirror won
        assert r["kit_nomirror"] >= r["kit"] - 1e-9 and 0.0 <= r["mirror_rate"] <= 1.0
    assert {c["id"] for c in data["claims"]} == {"C1", "C2", "C11"}  # C3, C4 read T1 (T3 holds the same models)
    report = (out / "REPORT.md").read_text()
    assert "Scaled-down run" in report and "### T3" in report and "### T8" in report
    assert "mpjpe_scaled_flip" in report and ("✔" in report or "✘" in report)
    assert "| L_REP (ITES-T) |" in report
    assert "kit, no mirror" in report and "mirror rate" in report
    for stem in ("05_ablation_losses", "07_ablation_networks_and_graphs"):
        executed = nbformat.read(out / "notebooks" / f"{stem}.ipynb", as_version=4)
        assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    assert (out / "figures" / "T3.png").exists() and (out / "figures" / "T8.png").exists()
    assert not (out / ".lock").exists()

    # Rerun: nothing is retrained and no finished row is recomputed; an up-to-date notebook is not even
    # re-executed, one whose executed copy is missing (an interrupted batch) is, and reads its rows' files.
    models, rows = _mtimes(shared_cache), {p: p.stat().st_mtime_ns for p in (out / "rows").rglob("seed*.json")}
    (out / "notebooks" / "07_ablation_networks_and_graphs.ipynb").unlink()
    again = rp.reproduce(profile="smoke", only="T3,T8", device="cpu", out=out, overrides=TINY, cache_dir=shared_cache,
                         log=lambda *a: None)
    assert not again["failed"]
    reused = {s["notebook"]: bool(s.get("reused")) for s in again["notebooks"]}
    assert reused == {"05_ablation_losses.ipynb": True, "07_ablation_networks_and_graphs.ipynb": False}
    assert _mtimes(shared_cache) == models
    assert {p: p.stat().st_mtime_ns for p in (out / "rows").rglob("seed*.json")} == rows
    assert len(json.loads((out / "results.json").read_text())["runs"]) == 2

    published = rp.publish(out, tmp_path / "published")
    assert (published / "REPORT.md").read_text() == (out / "REPORT.md").read_text()
    assert (published / "figures" / "T3.png").exists()
    assert str(out) not in (published / "results.json").read_text()  # no machine-specific paths


def test_broken_notebook_is_reported_and_the_rest_runs(tmp_path, shared_cache):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    for stem in ("05_ablation_losses", "07_ablation_networks_and_graphs"):
        shutil.copy(REPO / "notebooks" / f"{stem}.ipynb", nbs)
    broken = nbformat.read(nbs / "05_ablation_losses.ipynb", as_version=4)
    broken.cells.insert(4, nbformat.v4.new_code_cell('raise RuntimeError("deliberately broken")'))
    nbformat.write(broken, nbs / "05_ablation_losses.ipynb")
    out = tmp_path / "out"
    result = rp.reproduce(profile="smoke", only="T3,T8", device="cpu", out=out, overrides=TINY, cache_dir=shared_cache,
                          notebooks_dir=nbs, log=lambda *a: None)
    status = {s["notebook"]: s for s in result["notebooks"]}
    assert status["07_ablation_networks_and_graphs.ipynb"]["status"] == "ok"
    failed = status["05_ablation_losses.ipynb"]
    assert failed["status"] == "failed" and "deliberately broken" in failed["error"] and failed["cell"] is not None
    report = (out / "REPORT.md").read_text()
    assert "05_ablation_losses.ipynb failed in cell" in report and "deliberately broken" in report
    assert "Not run: 05_ablation_losses.ipynb failed" in report
    assert {r["table"] for r in json.loads((out / "results.json").read_text())["records"]} == {"T8"}
    assert (out / "notebooks" / "05_ablation_losses.ipynb").exists()  # the failed copy is kept for reading


def test_a_locked_out_dir_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".lock").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": "now"}))
    with pytest.raises(rp.ReproduceLockedError, match=f"pid {os.getpid()}"):
        rp.reproduce(profile="smoke", only="T3", out=out, log=lambda *a: None)
    assert not (out / "results.json").exists()
    # a lock left by a process that is gone is stale: taken over
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / ".lock").write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "started": "then"}))
    with rp.OutLock(out):
        assert json.loads((out / ".lock").read_text())["pid"] == os.getpid()
    assert not (out / ".lock").exists()


def test_results_merge_keeps_earlier_records(tmp_path):
    old = [{"table": "T7", "row": "agcn", "metric": "MPJPE", "seed": 0, "profile": "smoke", "kit": 1.0}]
    rp.write_run_results(tmp_path, old)
    new = [{"table": "T8", "row": "both", "metric": "MPJPE", "seed": 0, "profile": "smoke", "kit": 2.0},
           {"table": "T7", "row": "agcn", "metric": "MPJPE", "seed": 1, "profile": "smoke", "kit": 3.0}]
    data = rp.write_run_results(tmp_path, new)
    assert sorted((r["table"], r["seed"]) for r in data["records"]) == [("T7", 0), ("T7", 1), ("T8", 0)]
    assert json.loads((tmp_path / "results.json").read_text())["records"] == data["records"]


def test_command_line_arguments():
    import argparse
    parser = argparse.ArgumentParser()
    rp.add_arguments(parser)
    args = parser.parse_args(["--profile", "tutorial", "--only", "T3,F6", "--seeds", "2", "--force", "--set",
                              "teacher_epochs=1", "--set", "optimizer=adam", "--out", "runs/x"])
    assert (args.profile, args.only, args.seeds, args.force, args.out) == ("tutorial", "T3,F6", 2, True, "runs/x")
    assert rp.parse_set(args.set_) == {"teacher_epochs": 1, "optimizer": "adam"}
    with pytest.raises(ValueError, match="not_a_field"):
        rp.parse_set(["not_a_field=1"])


def test_close_claims_get_more_seeds(tmp_path, shared_cache, monkeypatch):
    monkeypatch.setattr(ex.claims, "CLOSE_FRACTION", 10.0)  # every comparison counts as close
    out = tmp_path / "out"
    result = rp.reproduce(profile="smoke", only="T7", device="cpu", out=out, overrides=TINY, cache_dir=shared_cache,
                          seeds=2, log=lambda *a: None)
    assert not result["failed"]
    seeds = {(r["row"], r["seed"]) for r in result["records"] if r["metric"] == "MPJPE"}
    assert seeds == {("agcn", 0), ("agcn", 1), ("resfc", 0), ("resfc", 1)}
    assert "(n=2)" in " ".join(result["claims"][0]["details"])
    assert " ± " in (out / "REPORT.md").read_text()


@pytest.mark.parametrize("kwargs,error", [({"data": "h36m:/no/such/dir"}, FileNotFoundError),
                                          ({"test_data": "synthetic"}, ValueError),
                                          ({"overrides": {"teacher_epochs": -1}}, ValueError),
                                          ({"only": "T10"}, KeyError)])
def test_bad_input_fails_before_anything_runs(tmp_path, kwargs, error):
    with pytest.raises(error):
        rp.reproduce(profile="smoke", out=tmp_path / "out", log=lambda *a: None, **kwargs)
    assert not (tmp_path / "out").exists()


def test_rows_reporting_the_same_model_are_found():
    """Extra seeds for a close row also go to the rows of other tables that report the same trained model,
    so that one model never shows two different seed averages in one report."""
    twins = rp.same_model_rows([("T3", "all")], ex.TABLE_IDS, "tutorial", "synthetic")
    assert twins == [("T1", "ites_ts_gt"), ("T2", "ites_ts"), ("T4", "dict_agcn"), ("T6", "lambda_kd_5"),
                     ("T8", "both")]
    teachers = rp.same_model_rows([("T7", "resfc")], ex.TABLE_IDS, "tutorial", "synthetic")
    assert teachers == [("T1", "ites_t_gt"), ("T2", "ites_t"), ("T3", "rep_ric"), ("T5", "lambda_rep_5"),
                        ("F6", "K12")]
    assert rp.same_model_rows([("T8", "physical")], ex.TABLE_IDS, "tutorial", "synthetic") == []


def test_report_shows_data_paths_relative_to_the_repository():
    from itespy.reproduce import REPO, shown_spec
    assert shown_spec(f"mocap:{REPO.parent / 'shared' / 'x.npz'}") == "mocap:../shared/x.npz"
    assert shown_spec("synthetic") == "synthetic" and shown_spec("h36m:data/h36m") == "h36m:data/h36m"


def test_code_version_ignores_comments_and_docstrings_but_not_code():
    from itespy.reproduce.jobs import _code_only
    base = 'def f(x):\n    """Doc."""\n    return x + 1  # add one\n'
    assert _code_only(base) == _code_only('def f(x):\n    """Other words."""\n    # a comment\n    return x + 1\n')
    assert _code_only(base) != _code_only('def f(x):\n    """Doc."""\n    return x + 2\n')


def test_a_row_whose_files_are_missing_is_skipped_before_training(tmp_path):
    from itespy.data.h36m import FILE_2D, FILE_3D
    from itespy.reproduce.rows import row_data_here
    from itespy.reproduce.runner import check_inputs
    (tmp_path / FILE_3D).write_bytes(b"")  # only existence is checked here: nothing is loaded
    (tmp_path / FILE_2D["gt"]).write_bytes(b"")
    data = f"h36m:{tmp_path}"
    assert row_data_here(ex.TABLES["T1"].row("ites_t_gt"), data) == (data, "")
    spec, reason = row_data_here(ex.TABLES["T1"].row("ites_t_img"), data)  # no CPN file: skipped, one reason
    assert spec is None and FILE_2D["cpn"] in reason and "cannot run here" in reason
    assert not rp.row_trains("T1", "ites_t_img", data) and rp.row_trains("T1", "ites_t_gt", data)
    check_inputs("smoke", "paper", {}, data, None, "cpu")  # the GT files are there
    with pytest.raises(FileNotFoundError, match=FILE_2D["cpn"]):  # asking for CPN input without its file
        check_inputs("smoke", "paper", {}, f"h36m-cpn:{tmp_path}", None, "cpu")


def test_the_report_says_how_many_seeds_each_verdict_rests_on():
    from itespy.reproduce.report import seeds_sentence
    claims = [{"id": "C1", "passed": True, "seeds": [0, 1, 2]}, {"id": "C2", "passed": False, "seeds": [0]},
              {"id": "C5", "passed": None, "seeds": []}, {"id": "C3", "passed": True, "seeds": [0, 1, 2]}]
    text = seeds_sentence(claims)
    assert "C1, C3 on 3 seeds" in text and "C2 on 1 seed" in text and "C5" not in text
    assert "no seeds were added" in text
    assert seeds_sentence([{"id": "C1", "passed": True, "seeds": [0, 1, 2]}]) == " Verdicts rest on: C1 on 3 seeds."


def test_the_report_names_each_stage_s_optimiser_and_rate():
    from itespy.reproduce.report import _profile_description
    text = _profile_description("tutorial", "paper", {})
    assert "sgd lr 0.001 (student: adam lr 0.002)" in text
    assert "sgd lr 0.001 (student: sgd lr 0.001)" in _profile_description("paper", "paper", {})

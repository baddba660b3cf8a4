"""Each claim's generated discussion (itespy.experiments.discussion) and the published run it reads
(itespy.reproduce.published)."""
import json

import pytest

from itespy import experiments as ex
from itespy import reproduce as rp
from itespy.experiments.discussion import WHY, claim_discussion, scale_text


def _record(table, row, metric, kit, seed, **kw):
    return {"table": table, "row": row, "metric": metric, "kit": kit, "seed": seed, "paper": None, "status": "ok",
            "profile": "tutorial", "data": "synthetic", "user_data": "synthetic", "variant": "paper", "overrides": {},
            **kw}


def _results(tmp_path, records, **run):
    path = tmp_path / "results.json"
    run = {"profile": "tutorial", "data": "synthetic", "variant": "paper", "overrides": {}, "seeds": 3,
           "code_version": "abc", "finished": "2026-12-05T00:00:00+00:00", **run}
    path.write_text(json.dumps({"records": records, "runs": [run], "claims": []}))
    return path


def test_every_claim_says_why_the_kit_may_differ():
    assert set(WHY) == set(ex.CLAIMS_BY_ID)


def test_a_discussion_gives_the_paper_this_run_each_seed_and_the_noise(tmp_path):
    recs = [_record("T7", "resfc", "MPJPE", v, s) for s, v in enumerate((70.0, 72.0))]
    recs += [_record("T7", "agcn", "MPJPE", v, s) for s, v in enumerate((80.0, 71.0))]
    recs += [_record("T7", "resfc", "MPJPE", 1.0, 0, profile="smoke")]  # another setting: not read
    pub = rp.published_results(_results(tmp_path, recs), tables=["T7"])
    assert len(pub["records"]) == 4 and pub["values"][("T7", "resfc", "MPJPE")]["mean"] == pytest.approx(71.0)
    (c10,) = pub["claims"]
    text = claim_discussion(c10, pub["values"], pub["run"])
    lines = text.splitlines()
    assert lines[0].startswith("✔ C10")
    assert lines[1] == "  paper: ✔ T7:resfc 85.9 vs T7:agcn 112.3 mm -> advantage +26.40"  # the paper's Table 7
    assert lines[2].startswith("  this run (seeds 0, 1): ✔ T7:resfc 71.0 ± 1.4 (n=2) vs T7:agcn 75.5 ± 6.4 (n=2)")
    assert lines[3] == "  on each seed alone: ✔ (seed 0) ✘ (seed 1)"
    assert lines[4] == "  seed noise: std over seeds up to 6.4 mm on the rows measured on several seeds"
    assert WHY["C10"] in lines[5] and "at most 30,000 training poses" in lines[5]


def test_scale_text_describes_the_run_that_was_made():
    run = {"profile": "tutorial", "recipe": {"max_train": 1280, "batch_size": 128, "teacher_epochs": 2,
                                             "student_epochs": 1}}
    assert "at most 1,280 training poses, 2 + 1 epochs at batch 128, about 20 teacher and 10 student" in scale_text(run)
    assert scale_text({"profile": "paper"}) == ""


def test_published_results_refuse_a_missing_or_corrupt_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="results: .*nowhere.json does not exist"):
        rp.published_results(tmp_path / "nowhere.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"records": [')
    with pytest.raises(ValueError, match="bad.json is not valid JSON"):
        rp.published_results(bad)
    bad.write_text('{"records": []}')
    with pytest.raises(ValueError, match="has no 'runs' and 'records'"):
        rp.published_results(bad)


def test_the_committed_tutorial_run_reads_back_with_three_seeds():
    pub = rp.published_results(rp.PUBLISHED_TUTORIAL)
    assert pub["run"]["profile"] == "tutorial" and pub["flat"]["MPJPE"] > 0
    t1 = pub["values"][("T1", "ites_ts_gt", "MPJPE")]
    assert t1["n"] == 3 and t1["seeds"] == [0, 1, 2]
    assert {c["id"] for c in pub["claims"]} == set(ex.CLAIMS_BY_ID)

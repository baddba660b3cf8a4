"""A published run (``results/tutorial``: what ``reproduce --publish`` copied into the repository), read back:
its records, their mean ± std over seeds, the claims checked on them and its flat-pose baseline. Chapters
05-08 show it by default, so a reader sees the 3-seed tutorial numbers without training anything."""
from __future__ import annotations

import json
from pathlib import Path

from .. import experiments as ex
from .paths import REPO
from .rows import select_records, shown_spec

PUBLISHED_TUTORIAL = REPO / "results" / "tutorial" / "results.json"


def read_results(path) -> dict:
    """A ``results.json`` as written by ``reproduce``; a clear error for a missing or corrupt file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"results: {path} does not exist; expected a results.json written by "
                                "`python -m itespy reproduce --publish DIR` (results/tutorial/results.json in a "
                                "checkout), or results=\"\" to train and evaluate the rows instead")
    try:
        data = json.loads(path.read_text())
    except ValueError as e:
        raise ValueError(f"results: {path} is not valid JSON ({e}); publish the run again") from None
    if not isinstance(data, dict) or not data.get("runs") or not isinstance(data.get("records"), list):
        raise ValueError(f"results: {path} has no 'runs' and 'records'; expected a results.json written by reproduce")
    return data


def run_records(data: dict, run: dict | None = None) -> list:
    """The records of one run setting of a results.json (by default its last run's)."""
    run = run or data["runs"][-1]
    return select_records(data["records"], run["profile"], run["data"], run.get("variant", "paper"),
                          run.get("overrides"), run.get("test_data"))


def published_results(path=PUBLISHED_TUTORIAL, tables=None) -> dict:
    """{'records', 'values' (:func:`ex.aggregate`), 'claims' (checked with today's rules, per seed too), 'run',
    'flat' (the flat pose's MPJPE / P-MPJPE on that test split), 'label'} of a published run, for ``tables``."""
    data = read_results(path)
    run = data["runs"][-1]
    records = [r for r in run_records(data, run) if tables is None or r["table"] in tables]
    values = ex.aggregate(records)
    tables = list(tables) if tables is not None else sorted({r["table"] for r in records})
    claims = ex.add_seed_verdicts(ex.evaluate_claims(values, tables), values)
    label = (f"{run['profile']}, {shown_spec(run['data'])}, up to {run.get('seeds', 1)} seeds, "
             f"code {run.get('code_version', '?')}, {str(run.get('finished', ''))[:10]}")
    return {"records": records, "values": values, "claims": claims, "run": run, "flat": run.get("flat_baseline"),
            "label": label}


def chapter_results(tables, results: str = "", **settings) -> dict:
    """What a table chapter (05-08) shows, in the shape of :func:`published_results`: the published run at
    ``results`` (read, nothing trained), or with ``results=""`` the chapter's rows trained and evaluated here
    with ``settings`` (:func:`run_tables`'s keywords: profile, data, device, seed, overrides, ...)."""
    if results:
        pub = published_results(results, tables)
        run = pub["run"]
        return {**pub, "label": f"published run {results}: {pub['label']}",
                "short": f"{run['profile']}, {shown_spec(run['data'])}, mean of up to {run.get('seeds', 1)} seeds"}
    from .rows import run_tables
    from .runner import flat_baseline
    records = run_tables(tables, **settings)
    values = ex.aggregate(records)
    profile, data = settings["profile"], settings["data"]
    variant, overrides = settings.get("variant", "paper"), settings.get("overrides") or {}
    run = {"profile": profile, "data": data, "variant": variant, "overrides": overrides}
    claims = ex.add_seed_verdicts(ex.evaluate_claims(values, tables), values)
    label = (f"this run: {profile}{' + overrides' if overrides else ''}, {shown_spec(data)}, "
             f"seed {settings.get('seed', 0)}")
    return {"records": records, "values": values, "claims": claims, "run": run,
            "flat": flat_baseline(profile, data, variant, overrides), "label": label,
            "short": f"{profile}{' + overrides' if overrides else ''}, {shown_spec(data)}"}

"""Re-render a committed report's REPORT.md from its results.json, without training anything.

    python tools/rerender_report.py [results/tutorial]

For a change in how the report is *written* (a new column, a clearer sentence); the numbers, claims and run
facts are the ones results.json holds, and the report says which code version computed them."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from itespy import experiments as ex
from itespy.io import atomic_write_text
from itespy.reproduce.report import report_markdown

REPO = Path(__file__).resolve().parents[1]


def rerender(report_dir: Path) -> str:
    results = json.loads((report_dir / "results.json").read_text())
    run = dict(results["runs"][-1])
    records = [r for r in results["records"] if r.get("profile") == run["profile"] and r.get("data") == run["data"]
               and r.get("variant") == run["variant"] and (r.get("overrides") or {}) == (run.get("overrides") or {})]
    values = ex.aggregate(records)
    same = [r for r in results["runs"] if r.get("profile") == run["profile"] and r.get("data") == run["data"]]
    run["all_runs"] = {"runs": len(same), "seconds": round(sum(r.get("seconds") or 0.0 for r in same), 1)}
    statuses = [{**s, "executed": str(report_dir / s["executed"])} for s in results["notebooks"]]
    figures = {p.stem: f"figures/{p.name}" for p in sorted((report_dir / "figures").glob("*.png"))}
    tables = run.get("tables") or list(ex.TABLE_IDS)
    return report_markdown(tables, values, results["claims"], statuses, run, figures, report_dir)


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    report_dir = (REPO / (argv[0] if argv else "results/tutorial")).resolve()
    atomic_write_text(report_dir / "REPORT.md", rerender(report_dir))
    print(f"rewrote {report_dir / 'REPORT.md'}")


if __name__ == "__main__":
    main()

"""Re-render a committed report's REPORT.md from its results.json, without training anything.

    python tools/rerender_report.py [results/tutorial] [--claims]

For a change in how the report is *written* (a new column, a clearer sentence); the numbers and run facts are
the ones results.json holds, and the report says which code version computed them. ``--claims`` also checks
the claims again on those numbers with the current rules (written back into results.json, with the code
version that checked them); nothing is trained either way."""
from __future__ import annotations

import sys
from pathlib import Path

from itespy import experiments as ex
from itespy.io import atomic_write_json, atomic_write_text
from itespy.reproduce.published import read_results, run_records
from itespy.reproduce.report import report_markdown

REPO = Path(__file__).resolve().parents[1]


def rerender(report_dir: Path, claims: bool = False) -> str:
    results = read_results(report_dir / "results.json")
    run = dict(results["runs"][-1])
    records = run_records(results, run)
    values = ex.aggregate(records)
    same = [r for r in results["runs"] if r.get("profile") == run["profile"] and r.get("data") == run["data"]]
    run["all_runs"] = {"runs": len(same), "seconds": round(sum(r.get("seconds") or 0.0 for r in same), 1)}
    statuses = [{**s, "executed": str(report_dir / s["executed"])} for s in results["notebooks"]]
    figures = {p.stem: f"figures/{p.name}" for p in sorted((report_dir / "figures").glob("*.png"))}
    tables = run.get("tables") or list(ex.TABLE_IDS)
    if claims:
        from itespy.reproduce.jobs import code_version
        results["claims"] = ex.add_seed_verdicts(ex.evaluate_claims(values, tables), values)
        results["claims_checked_by"] = code_version()
        atomic_write_json(report_dir / "results.json", results)
    return report_markdown(tables, values, results["claims"], statuses, run, figures, report_dir)


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    claims = "--claims" in argv
    argv = [a for a in argv if a != "--claims"]
    report_dir = (REPO / (argv[0] if argv else "results/tutorial")).resolve()
    atomic_write_text(report_dir / "REPORT.md", rerender(report_dir, claims))
    print(f"rewrote {report_dir / 'REPORT.md'}")


if __name__ == "__main__":
    main()

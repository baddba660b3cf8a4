"""The report: one figure per table and ``REPORT.md`` (tables, claims, notebooks, run settings)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from .. import experiments as ex
from ..config import make_config
from .paths import REPORT_FIGURES_DIR
from .rows import shown_spec


def _profile_description(profile: str, variant: str, overrides: dict) -> str:
    cfg = make_config(profile, variant, **(overrides or {}))
    student_optimizer = cfg.optimizer if cfg.student_optimizer == "same" else cfg.student_optimizer
    student_lr = cfg.lr if cfg.student_lr is None else cfg.student_lr
    return (f"{cfg.max_train or 'all'} training poses (max), {cfg.max_test or 'all'} test poses (max), "
            f"{cfg.teacher_epochs} teacher + {cfg.student_epochs} student epochs, {cfg.optimizer} lr {cfg.lr:g} "
            f"(student: {student_optimizer} lr {student_lr:g}), "
            f"batch {cfg.batch_size}, teacher {cfg.teacher_hidden}/{cfg.teacher_bottleneck}×{cfg.teacher_blocks}, "
            f"student {cfg.student_channels}×{cfg.student_blocks}, L_RIC cycle {cfg.ric_rotation} "
            f"({cfg.cycle_copies} rotation{'s' if cfg.cycle_copies > 1 else ''} per pose), camera head {cfg.camera}")


def write_figures(out: Path, tables, values: dict, profile: str, report_figures_dir=None) -> dict:
    """One figure per table with results (bar charts; Figure 6 as a curve) in ``out/figures``; copied to
    figures/report/ for the tutorial and paper profiles. Returns {table id: path relative to out}."""
    import matplotlib.pyplot as plt  # headless: matplotlib falls back to Agg without a display

    paths = {}
    for tid in tables:
        if not any(k[0] == tid and v.get("mean") is not None for k, v in values.items()):
            continue
        path = out / "figures" / f"{tid}.png"
        fig = ex.plot_table(tid, values, path, title_suffix=f" [{profile} profile]")
        plt.close(fig)
        paths[tid] = path
    target = report_figures_dir if report_figures_dir is not None else (
        REPORT_FIGURES_DIR if profile in ("tutorial", "paper") else None)
    if target is not None and paths:
        target = Path(target)
        target.mkdir(parents=True, exist_ok=True)
        for path in paths.values():
            tmp = target / f".{path.name}.tmp"
            shutil.copyfile(path, tmp)
            os.replace(tmp, target / path.name)
    return {tid: str(p.relative_to(out)) for tid, p in paths.items()}


def failure_text(status: dict) -> str:
    where = f"cell {status['cell']}" if status.get("cell") is not None else "before or between cells"
    src = f" (`{status['source']}`)" if status.get("source") else ""
    return f"{status['notebook']} failed in {where}{src}: {status['error']}"


def report_markdown(tables, values: dict, claims: list, statuses: list, run: dict, figures: dict, out: Path) -> str:
    profile, overrides = run["profile"], run.get("overrides") or {}
    lines = ["# ITES reproduction report", "",
             f"* profile **{profile}** ({_profile_description(profile, run['variant'], overrides)})"
             + (f", overrides {config_str(overrides)}" if overrides else ""),
             f"* variant {run['variant']} · data `{shown_spec(run['data'])}` · Table 2 test data "
             f"`{run.get('test_data') or 'none (dev-data test split)'}` · device {run['device']}",
             f"* seeds: up to {run['seeds']} (extra seeds for every row of a close claim; a claim compares its rows on the seeds they all have) · itespy "
             f"{run['itespy']} · code version {run['code_version']} · {run['finished']} · wall time of this "
             f"invocation {run['seconds']:.0f} s (rows finished earlier are reused)"
             + (f"; {run['all_runs']['seconds']:.0f} s over the {run['all_runs']['runs']} runs of this setting into "
                "this folder" if run.get("all_runs", {}).get("runs", 0) > 1 else "")]
    if run.get("tasks"):
        tk = run["tasks"]
        how = (f"{run.get('parallel_jobs')} local worker process(es)" if run.get("executor") == "local"
               else f"{run.get('executor')} jobs")
        lines.append(f"* rows computed by {how}: {tk['done']} training task(s) done"
                     + (f", {tk['failed']} failed" if tk["failed"] else "")
                     + f", {tk['seconds'] / 3600:.2f} worker-hours over the runs into this folder (longest "
                     f"task {tk['longest']:.0f} s; `jobs/state.json`)")
    lines.append("")
    if profile in ("smoke", "tutorial") or overrides:
        lines += [f"> **Scaled-down run.** The {profile} profile{' with overrides' if overrides else ''} trains on a "
                  "fraction of the data for a few epochs (the paper: full Human3.6M, 40 + 30 epochs), so the "
                  "kit's numbers are not comparable to the paper's; they show that every experiment runs. "
                  "Read a claim's verdict only where it holds on every seed (the seeds column).", ""]
    if not run["data"].startswith(("h36m:", "h36m-cpn:")):
        lines += [f"> **Data.** `{shown_spec(run['data'])}` is not Human3.6M: errors are in mm on that data set's test split "
                  "and differ from the paper's for that reason too.", ""]
    npass = sum(1 for c in claims if c["passed"] is True)
    nfail = sum(1 for c in claims if c["passed"] is False)
    summary = (f"**Claims:** {npass} hold, {nfail} do not, {len(claims) - npass - nfail} could not be checked "
               "(details after the tables).")
    summary += seeds_sentence(claims)
    seeded = [c for c in claims if "stable" in c]
    if seeded:
        flips = [c["id"] for c in seeded if not c["stable"]]
        summary += (f" Checked on each seed's own numbers, {len(seeded) - len(flips)} of {len(seeded)} verdicts are "
                    "the same on every seed" + (f"; {', '.join(flips)} depend{'s' if len(flips) == 1 else ''} on the seed." if flips else "."))
    if run.get("flat_baseline"):
        fb = run["flat_baseline"]
        summary += (f" **Flat-pose baseline** (every joint at the root's depth, what an untrained student "
                    f"predicts) on this test split: MPJPE {fb['MPJPE']:.1f} mm, P-MPJPE {fb['P-MPJPE']:.1f} mm; "
                    "a trained model should beat it.")
    lines += [summary, ""]
    failed = [s for s in statuses if s["status"] != "ok"]
    if failed:
        lines += ["## Failed notebooks", ""] + [f"* {failure_text(s)} -- executed copy: "
                                                  f"`{Path(s['executed']).relative_to(out)}`" for s in failed] + [""]
    lines += ["## Tables", ""]
    nb_of = {t: stem for stem, ts in ex.NOTEBOOKS.items() for t in ts}
    for tid in tables:
        t = ex.get_table(tid)
        lines += [f"### {t.id} · {t.title}", "",
                  f"*Paper:* {t.caption} *Notebook:* `notebooks/{nb_of[tid]}.ipynb`.", ""]
        if not any(k[0] == tid for k in values):
            why = next((failure_text(s) for s in failed if tid in (s.get("tables") or [])), "no results")
            lines += [f"Not run: {why}.", ""]
            continue
        lines += [ex.results_table_text(tid, values, markdown=True, flat=run.get("flat_baseline")), ""]
        if t.note:
            lines += [f"*Note:* {t.note}", ""]
        if tid in figures:
            lines += [f"![{t.id}]({figures[tid]})", ""]
    lines += ["## Claims", "", f"{npass} hold, {nfail} do not, {len(claims) - npass - nfail} could not be checked "
              "(✔ holds, ✘ does not, – not enough results)." + seeds_sentence(claims), ""]
    lines += [ex.claim_result_text(c, markdown=True) for c in claims] + [""]
    close = sum(d.endswith(("(close)", "(within seed noise)")) for c in claims for d in c["details"])
    if close:
        lines += [f"{close} comparison(s) are *close* (gap under {ex.claims.CLOSE_FRACTION:.0%} of the values, or under the "
                  f"seed noise): their verdicts are fragile at this scale"
                  + ("; rerun with `--seeds 3` or more to firm them up." if run["seeds"] < 3 else "."), ""]
    lines += ["## Notebooks", "", "| notebook | tables | status | seconds | executed copy |",
              "| --- | --- | --- | ---: | --- |"]
    for s in statuses:
        state = s["status"] + (" (up to date: not re-executed)" if s.get("reused") else "")
        lines.append(f"| {s['notebook']} | {', '.join(s.get('tables') or [])} | {state} | {s['seconds']:.0f} | "
                     f"`{Path(s['executed']).relative_to(out)}` |")
    return "\n".join(lines) + "\n"


def config_str(overrides: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in overrides.items())


def seeds_sentence(claims) -> str:
    """How many seeds each checked verdict rests on (a claim compares its rows on the seeds they all have;
    the runner adds seeds only to the rows of close claims, so a far-apart comparison may rest on one seed)."""
    by_n = {}
    for c in claims:
        if c["passed"] is not None and c.get("seeds"):
            by_n.setdefault(len(c["seeds"]), []).append(c["id"])
    if not by_n:
        return ""
    parts = [f"{', '.join(ids)} on {n} seed{'s' if n > 1 else ''}" for n, ids in sorted(by_n.items(), reverse=True)]
    one = " (not close: no seeds were added to them)" if 1 in by_n and len(by_n) > 1 else ""
    return f" Verdicts rest on: {'; '.join(parts)}{one}."


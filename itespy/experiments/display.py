"""Text tables and figures of the experiments, shared by the notebooks and the report."""
from __future__ import annotations

from ..config import Config
from .claims import claims_for
from .tables import METRICS, PAPER_FLAT_H36M, Table, config_summary, get_table

# ----------------------------------------------------------------------------------------------------
# Text formatting (pandas is not a dependency)
# ----------------------------------------------------------------------------------------------------


def format_grid(header, rows, markdown: bool = False, align=None) -> str:
    """A fixed-width (or Markdown) table from a header and rows of strings; numbers right-aligned."""
    header = [str(h) for h in header]
    rows = [[("" if c is None else str(c)) for c in r] for r in rows]
    align = align or ["l"] + ["r"] * (len(header) - 1)
    if markdown:
        sep = ["---:" if a == "r" else "---" for a in align]
        lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]

    def line(cells):
        return "  ".join(c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(cells, widths, align)).rstrip()
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _num(v, digits=1) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def protocol_line(table: Table) -> str:
    parts = [f"{m} = {METRICS[m].protocol} ({METRICS[m].unit})" for m in table.metrics]
    return "Protocols: " + ", ".join(parts)


def paper_table_text(table_id: str) -> str:
    """The paper's numbers of one table beside each row's configuration (deterministic: no results)."""
    t = get_table(table_id)
    header = ["row", "reports", "config overrides"] + [f"paper {m}" for m in t.metrics]
    reports = {"teacher": "ITES-T", "student": "ITES-TS"}
    rows = [[r.label, f"{r.model} network" if t.kind == "cost" else reports[r.model],
             config_summary(r.overrides) + (" [IMG: CPN input]" if r.input == "img" else "")
             + (" [test: MPI-INF-3DHP]" if r.test == "3dhp" else "")]
            + [_num(r.paper.get(m), METRICS[m].digits) for m in t.metrics] for r in t.rows]
    text = [f"{t.id} · {t.title}", t.caption, protocol_line(t), "",
            format_grid(header, rows, align=["l", "l", "l"] + ["r"] * len(t.metrics))]
    if t.note:
        text += ["", f"Note: {t.note}"]
    return "\n".join(text)


def references_text(table_id: str) -> str:
    """The other methods of Table 1 / 2 as the paper prints them (deterministic)."""
    t = get_table(table_id)
    if not t.references:
        return ""
    rows = [[ref.kind, ref.method] + [(v if isinstance(v, str) else _num(v)) for v in
                                      (ref.values.get(c) for c in t.reference_columns)] for ref in t.references]
    return format_grid(["type", "method", *t.reference_columns], rows,
                       align=["l", "l"] + ["l" if c == "Training set" else "r" for c in t.reference_columns])


def claims_text(table_ids) -> str:
    """Definitions of the claims on the given tables (deterministic)."""
    lines = []
    for c in claims_for(table_ids):
        lines.append(f"{c.id} [{', '.join(c.tables)}] {c.statement}")
        lines.append(f"    check: {c.definition()}")
    return "\n".join(lines)


def cell_text(cell, digits=1) -> str:
    if cell is None or cell.get("mean") is None:
        return "-" if cell is None else {"skipped": "skipped", "error": "error"}.get(cell.get("status"), "-")
    text = f"{cell['mean']:.{digits}f}"
    if cell.get("n", 0) > 1:
        text += f" ± {cell['std']:.{digits}f}"
    return text


def results_table_rows(table_id: str, values: dict, flat: dict | None = None):
    """Header and rows of a kit | paper | Δ table from aggregated values.

    ``flat`` ({"MPJPE": mm, "P-MPJPE": mm}, the flat pose on the kit's test split) adds, for those metrics,
    the kit's and the paper's errors as fractions of their own data set's flat pose (the paper's:
    :data:`PAPER_FLAT_H36M`) -- the comparison that carries across data sets, which Δ in mm does not. Rows that
    recorded it also show the error without the depth mirror and the mirror rate (the share of test poses whose
    mirror scored better: 0.5 is a coin toss; chapter 02b)."""
    t = get_table(table_id)
    fractions = _flat_metrics(t, flat)
    mirrored = [m for m in t.metrics if any((values.get((t.id, r.id, m)) or {}).get("kit_nomirror") is not None
                                            for r in t.rows)]
    header = ["row"]
    for m in t.metrics:
        unit = METRICS[m].unit
        header += [f"{m} kit ({unit})", "paper", "Δ"]
        if m in fractions:
            header += ["kit / flat", "paper / flat"]
        if m in mirrored:
            header += ["kit, no mirror"]
    if mirrored:
        header.append("mirror rate")
    header.append("seeds")
    rows = []
    for r in t.rows:
        line, n = [r.label], 0
        for m in t.metrics:
            cell = values.get((t.id, r.id, m))
            digits = METRICS[m].digits
            paper = r.paper.get(m)
            kit = None if cell is None else cell.get("mean")
            line += [cell_text(cell, digits), _num(paper, digits),
                     "-" if kit is None or paper is None else f"{kit - paper:+.{digits}f}"]
            if m in fractions:
                line += ["-" if kit is None else f"{kit / flat[m]:.2f}",
                         "-" if paper is None else f"{paper / PAPER_FLAT_H36M[m]:.2f}"]
            if m in mirrored:
                line.append(_num((cell or {}).get("kit_nomirror"), digits))
            n = max(n, 0 if cell is None else cell.get("n", 0))
        if mirrored:
            rate = (values.get((t.id, r.id, mirrored[0])) or {}).get("mirror_rate")
            line.append("-" if rate is None else f"{rate:.2f}")
        line.append(str(n) if n else "-")
        rows.append(line)
    return header, rows


def results_table_text(table_id: str, values: dict, markdown: bool = False, flat: dict | None = None) -> str:
    t = get_table(table_id)
    header, rows = results_table_rows(table_id, values, flat)
    body = format_grid(header, rows, markdown=markdown)
    notes = [f"{r.label}: {values[(t.id, r.id, t.metrics[0])]['note']}" for r in t.rows
             if (t.id, r.id, t.metrics[0]) in values and values[(t.id, r.id, t.metrics[0])].get("note")]
    if markdown:
        bullets = ["", *[f"* {n}" for n in notes]] if notes else []
        return "\n".join([protocol_line(t) + ". " + _delta_line(t, flat), "", body] + bullets)
    return "\n".join([f"{t.id} · {t.title}", protocol_line(t) + ". " + _delta_line(t, flat), body] + notes)


def _flat_metrics(t, flat) -> list:
    """The table's metrics that have a flat pose here and on the paper's data (the fraction columns)."""
    return [m for m in t.metrics if flat and flat.get(m) and m in PAPER_FLAT_H36M]


def _delta_line(t, flat) -> str:
    metrics = _flat_metrics(t, flat)
    if not metrics:
        return "Δ = kit − paper."
    shown = " / ".join(f"{flat[m]:.1f}" for m in metrics)
    paper = " / ".join(f"{PAPER_FLAT_H36M[m]:.1f}" for m in metrics)
    return (f"Δ = kit − paper, in mm on *different* test data; what compares is the fraction of the flat pose "
            f"on each one's own test split (kit: {shown} mm here; paper: Human3.6M S9/S11, {paper} mm)")


VERDICT_MARKS = {True: "✔", False: "✘", None: "–"}


def claim_result_text(result: dict, markdown: bool = False) -> str:
    mark = VERDICT_MARKS[result["passed"]]
    head = f"{mark} {result['id']} [{', '.join(result['tables'])}] {result['statement']}"
    details = list(result["details"])
    if result.get("by_seed"):
        marks = " ".join(f"{VERDICT_MARKS[v]} (seed {s})" for s, v in result["by_seed"].items())
        details.append(f"on each seed's own numbers: {marks}"
                       + ("" if result.get("stable") else " -- the verdict depends on the seed"))
    if markdown:
        return "\n".join([f"* {head}  ", f"  check: {result['definition']}  "] + [f"  {d}  " for d in details])
    return "\n".join([head, f"    check: {result['definition']}"] + [f"    {d}" for d in details])


# ----------------------------------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------------------------------

KIT_COLOR, PAPER_COLOR = "#1f77b4", "#bbbbbb"


def plot_table(table_id: str, values: dict, path=None, title_suffix: str = ""):
    """A bar chart (kit vs paper, one panel per column; error bars = std over seeds) or, for Figure 6, the
    error as a function of K. Saved with :func:`itespy.viz.save_figure` when ``path`` is given."""
    import matplotlib.pyplot as plt
    import numpy as np

    t = get_table(table_id)
    wide = 0.9 * len(t.rows) if t.kind != "curve" else 0
    fig, axes = plt.subplots(1, len(t.metrics), figsize=(max(4.2, 1.2 + wide) * len(t.metrics), 3.9),
                             squeeze=False)
    for ax, m in zip(axes[0], t.metrics):
        metric = METRICS[m]
        kit = [values.get((t.id, r.id, m), {}) for r in t.rows]
        means = np.array([np.nan if c.get("mean") is None else c["mean"] for c in kit], float)
        stds = np.array([0.0 if not c.get("std") else c["std"] for c in kit], float)
        paper = np.array([np.nan if r.paper.get(m) is None else r.paper[m] for r in t.rows], float)
        if t.kind == "curve":
            xs = np.array([r.overrides.get(t.x, getattr(Config(), t.x)) for r in t.rows], float)
            ax.errorbar(xs, means, yerr=stds, marker="o", color=KIT_COLOR, capsize=3, label="kit")
            if np.isfinite(paper).any():
                ax.plot(xs, paper, marker="s", color=PAPER_COLOR, label="paper")
            ax.axvline(12, color="#d62728", linestyle="--", linewidth=1, label="paper's choice K = 12")
            ax.set_xscale("log", base=2)
            ax.set_xticks(xs)
            ax.set_xticklabels([f"{int(x)}" for x in xs])
            ax.set_xlabel("dictionary size K")
        else:
            x = np.arange(len(t.rows))
            w = 0.38
            ax.bar(x - w / 2, np.nan_to_num(means), w, yerr=stds, color=KIT_COLOR, capsize=3, label="kit")
            ax.bar(x + w / 2, np.nan_to_num(paper), w, color=PAPER_COLOR, label="paper")
            for xi, v in zip(x, means):
                if not np.isfinite(v):
                    ax.text(xi - w / 2, 0, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
            ax.set_xticks(x)
            ax.set_xticklabels([_wrap(r.label) for r in t.rows], fontsize=7)
        arrow = "lower is better" if metric.lower_is_better else "higher is better"
        ax.set_ylabel(f"{m} ({metric.unit})")
        ax.set_title(f"{m}: {metric.protocol}\n({arrow})", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.suptitle(f"{t.id} · {t.title}{title_suffix}", fontsize=10, x=0.02, ha="left")
    # the legend on its own line under the title (not over the title's end)
    fig.legend(handles, labels, loc="upper right", bbox_to_anchor=(0.99, 0.935), ncol=len(labels), fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.88))
    if path is not None:
        from ..viz import save_figure
        save_figure(fig, path)
    return fig


def _wrap(label: str, width: int = 16) -> str:
    import textwrap
    return "\n".join(textwrap.wrap(label.replace(" · ", " "), width)) or label

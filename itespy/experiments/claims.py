"""The paper's claims as checks on results: aggregation over seeds and each claim's verdict."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .tables import _TABLE_LIST, METRICS, Metric, get_table

# A comparison is *close* when its gap is under this fraction of the values (or under the seed noise).
CLOSE_FRACTION = 0.03



# ----------------------------------------------------------------------------------------------------
# Claims
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """A finding of the paper as a check on the kit's results.

    ``kind="better"``: in every pair (winner, loser) of ``pairs`` the winner is better on ``metric`` (lower
    error / higher PCK) by more than ``margin`` (in the metric's unit).
    ``kind="near_best"``: ``row`` is within ``tolerance`` (a fraction of the best value) of the best row
    of ``table`` on ``metric``."""
    id: str
    tables: tuple
    statement: str
    kind: str
    metric: str = "MPJPE"
    pairs: tuple = ()  # ((table, row), (table, row)) winner first
    table: str = ""
    row: str = ""
    margin: float = 0.0
    tolerance: float = 0.05

    def refs(self) -> list:
        if self.kind == "better":
            return [ref for pair in self.pairs for ref in pair]
        return [(self.table, r) for r in get_table(self.table).row_ids]

    def definition(self) -> str:
        m = METRICS[self.metric]
        if self.kind == "better":
            pairs = "; ".join(f"{a[0]}:{a[1]} vs {b[0]}:{b[1]}" for a, b in self.pairs)
            how = "lower" if m.lower_is_better else "higher"
            return f"{self.metric} ({m.protocol}) {how} by more than {self.margin:g} {m.unit} in each pair: {pairs}"
        return (f"{self.metric} ({m.protocol}) of {self.table}:{self.row} within {self.tolerance:.0%} of the best "
                f"row of {self.table}")


CLAIMS = (
    Claim("C1", ("T3",), "L_RIC is needed: REP + RIC beats REP only (teacher)", "better",
          pairs=((("T3", "rep_ric"), ("T3", "rep_only")),)),
    Claim("C2", ("T3",), "The full model beats the student without L_REC and the student trained by L_REC alone",
          "better", pairs=((("T3", "all"), ("T3", "no_rec")), (("T3", "all"), ("T3", "rec_only")))),
    Claim("C3", ("T1", "T3"), "The student beats its teacher (ITES-TS < ITES-T)", "better",
          pairs=((("T1", "ites_ts_gt"), ("T1", "ites_t_gt")), (("T3", "all"), ("T3", "rep_ric")))),
    Claim("C4", ("T1", "T3"), "The student beats its teacher in P-MPJPE too", "better", metric="P-MPJPE",
          pairs=((("T1", "ites_ts_gt"), ("T1", "ites_t_gt")), (("T3", "all"), ("T3", "rep_ric")))),
    Claim("C5", ("T2",), "On MPI-INF-3DHP the student beats its teacher (PCK)", "better", metric="PCK",
          pairs=((("T2", "ites_ts"), ("T2", "ites_t")),)),
    Claim("C6", ("T4",), "The pose-dictionary teacher beats the C3DPO-style teacher (with either student)", "better",
          pairs=((("T4", "dict_agcn"), ("T4", "c3dpo_agcn")), (("T4", "dict_resfc"), ("T4", "c3dpo_resfc")))),
    Claim("C7", ("T4",), "The AGCN student beats the ResFC student (with either teacher)", "better",
          pairs=((("T4", "dict_agcn"), ("T4", "dict_resfc")), (("T4", "c3dpo_agcn"), ("T4", "c3dpo_resfc")))),
    Claim("C8", ("T5",), "λREP = 5 is (near) the best teacher weight", "near_best", table="T5", row="lambda_rep_5"),
    Claim("C9", ("T6",), "λKD = 5 is (near) the best student weight", "near_best", table="T6", row="lambda_kd_5"),
    Claim("C10", ("T7",), "A ResFC feature extractor beats an AGCN one in the teacher", "better",
          pairs=((("T7", "resfc"), ("T7", "agcn")),)),
    Claim("C11", ("T8",), "Physical + nonphysical graphs beat either graph alone", "better",
          pairs=((("T8", "both"), ("T8", "physical")), (("T8", "both"), ("T8", "nonphysical")))),
    Claim("C12", ("F6",), "K = 12 is (near) the best dictionary size", "near_best", table="F6", row="K12"),
    Claim("C13", ("F6",), "A very small (K = 2) or very large (K = 32) dictionary is worse than K = 12", "better",
          pairs=((("F6", "K12"), ("F6", "K2")), (("F6", "K12"), ("F6", "K32")))),
)
CLAIMS_BY_ID = {c.id: c for c in CLAIMS}


def claims_for(table_ids) -> list:
    """Claims that need only the given tables."""
    ids = set(table_ids)
    return [c for c in CLAIMS if set(c.tables) & ids]


# ----------------------------------------------------------------------------------------------------
# Results: aggregation over seeds, claim checks
# ----------------------------------------------------------------------------------------------------


def aggregate(records) -> dict:
    """Records -> {(table, row, metric): {mean, std, n, seeds, paper, protocol, model, status, note}}.

    Means and standard deviations (ddof=1; 0 for one seed) over the seeds with a value; a cell without any
    value keeps the status and note of its records (skipped / error)."""
    cells = {}
    for r in records:
        cells.setdefault((r["table"], r["row"], r["metric"]), []).append(r)
    out = {}
    for key, recs in cells.items():
        by_seed = {}
        for r in recs:
            by_seed[r.get("seed", 0)] = r  # a later record of the same seed replaces an earlier one
        recs = [by_seed[s] for s in sorted(by_seed)]
        values = [r["kit"] for r in recs if r.get("kit") is not None and r.get("status", "ok") == "ok"]
        n = len(values)
        mean = sum(values) / n if n else None
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else (0.0 if n else None)
        last = recs[-1]
        out[key] = {"mean": mean, "std": std, "n": n, "values": values,
                    "seeds": [r.get("seed", 0) for r in recs if r.get("kit") is not None],
                    "paper": last.get("paper"), "protocol": last.get("protocol"), "model": last.get("model"),
                    "status": "ok" if n else last.get("status", "missing"), "note": last.get("note", "")}
    return out


def _better(metric: Metric, a: float, b: float, margin: float) -> bool:
    return (b - a > margin) if metric.lower_is_better else (a - b > margin)


def _cell(values, table, row, metric):
    return values.get((table, row, metric))


def evaluate_claim(claim: Claim, values: dict, source: str = "kit") -> dict:
    """Check one claim on aggregated results (``source="kit"``) or on the paper's own numbers
    (``source="paper"``). Returns {'id', 'statement', 'definition', 'passed' (True/False/None if a needed
    number is missing), 'details' (one line per comparison), 'close' (refs of comparisons near the
    boundary: candidates for more seeds)}."""
    metric = METRICS[claim.metric]

    def get(ref):
        cell = _cell(values, ref[0], ref[1], claim.metric)
        if cell is None:
            return None, 0.0, 0
        if source == "paper":
            return cell.get("paper"), 0.0, 1
        return cell.get("mean"), cell.get("std") or 0.0, cell.get("n", 0)

    def fmt(v, s, n):
        return f"{v:.{metric.digits}f}" + (f" ± {s:.{metric.digits}f} (n={n})" if n > 1 else "")

    details, verdicts, close = [], [], []
    if claim.kind == "better":
        for a, b in claim.pairs:
            (va, sa, na), (vb, sb, nb) = get(a), get(b)
            if va is None or vb is None:
                details.append(f"{a[0]}:{a[1]} vs {b[0]}:{b[1]}: not available")
                continue
            ok = _better(metric, va, vb, claim.margin)
            verdicts.append(ok)
            diff = vb - va if metric.lower_is_better else va - vb
            noise = math.hypot(sa, sb)
            note = " (within seed noise)" if noise and abs(diff - claim.margin) < noise else ""
            is_close = abs(diff - claim.margin) < CLOSE_FRACTION * max(abs(va), abs(vb))
            details.append(f"{a[0]}:{a[1]} {fmt(va, sa, na)} vs {b[0]}:{b[1]} {fmt(vb, sb, nb)} {metric.unit} "
                           f"-> advantage {diff:+.{metric.digits + 1}f}{note or (' (close)' if is_close else '')}")
            if is_close or note:
                close += [a, b]
    else:
        table = get_table(claim.table)
        got = {r: get((claim.table, r)) for r in table.row_ids}
        got = {r: v for r, v in got.items() if v[0] is not None}
        if claim.row in got and len(got) > 1:
            pick = min if metric.lower_is_better else max
            best_row = pick(got, key=lambda r: got[r][0])
            best, mine = got[best_row][0], got[claim.row][0]
            gap = (mine - best) if metric.lower_is_better else (best - mine)
            limit = claim.tolerance * abs(best)
            ok = gap <= limit
            verdicts.append(ok)
            details.append(f"{claim.table}:{claim.row} {fmt(*got[claim.row])} vs best {claim.table}:{best_row} "
                           f"{fmt(*got[best_row])} {metric.unit} -> gap {gap:.{metric.digits}f} "
                           f"(allowed {limit:.{metric.digits}f})")
            if abs(gap - limit) < CLOSE_FRACTION * abs(best):
                close += [(claim.table, claim.row), (claim.table, best_row)]
        else:
            details.append(f"{claim.table}: not enough rows with numbers")
    passed = all(verdicts) if verdicts else None
    return {"id": claim.id, "tables": list(claim.tables), "statement": claim.statement,
            "definition": claim.definition(), "metric": claim.metric, "protocol": metric.protocol,
            "passed": passed, "complete": bool(verdicts) and len(verdicts) == len(details), "details": details,
            "close": sorted(set(close)), "source": source}


def evaluate_claims(values: dict, table_ids=None, source: str = "kit") -> list:
    claims = CLAIMS if table_ids is None else claims_for(table_ids)
    return [evaluate_claim(c, values, source) for c in claims]


def seed_values(values: dict, seed: int) -> dict:
    """The cells of :func:`aggregate` as one seed saw them: each cell's value on ``seed``; a cell measured on
    a single seed keeps that value (it was not rerun because its claims were not close); a cell measured on
    other seeds but not this one has no value."""
    out = {}
    for key, cell in values.items():
        by_seed = dict(zip(cell.get("seeds", []), cell.get("values", [])))
        value = by_seed.get(seed, cell["mean"] if cell.get("n") == 1 else None)
        out[key] = {**cell, "mean": value, "std": 0.0 if value is not None else None, "n": int(value is not None),
                    "values": [] if value is None else [value], "seeds": [] if value is None else [seed]}
    return out


def add_seed_verdicts(claims: list, values: dict) -> list:
    """Give every claim result ``by_seed``: {seed: passed} checked on each seed's own numbers
    (:func:`seed_values`), and ``stable``: the same verdict on every seed. Nothing is added with one seed."""
    seeds = sorted({s for cell in values.values() for s in cell.get("seeds", [])})
    if len(seeds) < 2:
        return claims
    per_seed = {s: {r["id"]: r["passed"] for r in
                    (evaluate_claim(CLAIMS_BY_ID[c["id"]], seed_values(values, s), c["source"]) for c in claims)}
                for s in seeds}
    for c in claims:
        c["by_seed"] = {s: per_seed[s][c["id"]] for s in seeds}
        c["stable"] = len(set(c["by_seed"].values())) == 1
    return claims


def paper_values() -> dict:
    """The paper's numbers in the shape of :func:`aggregate` (for checking the claims on the paper itself)."""
    out = {}
    for t in _TABLE_LIST:
        for r in t.rows:
            for m in t.metrics:
                out[(t.id, r.id, m)] = {"mean": None, "std": None, "n": 0, "paper": r.paper.get(m),
                                        "protocol": METRICS[m].protocol, "model": r.model, "status": "paper"}
    return out



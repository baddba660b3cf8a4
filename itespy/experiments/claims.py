"""The paper's claims as checks on results: aggregation over seeds and each claim's verdict."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .tables import TABLE_LIST, METRICS, Metric, get_table

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
    test_data: str = ""  # the kind of test data the claim is about ("3dhp"): a stand-in split is not checked

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
    # T3's "all" and "rep_ric" rows are the same two models as T1's ITES-TS and ITES-T: one pair, checked once
    Claim("C3", ("T1",), "The student beats its teacher (ITES-TS < ITES-T)", "better",
          pairs=((("T1", "ites_ts_gt"), ("T1", "ites_t_gt")),)),
    Claim("C4", ("T1",), "The student beats its teacher in P-MPJPE too", "better", metric="P-MPJPE",
          pairs=((("T1", "ites_ts_gt"), ("T1", "ites_t_gt")),)),
    Claim("C5", ("T2",), "On MPI-INF-3DHP the student beats its teacher (PCK)", "better", metric="PCK",
          pairs=((("T2", "ites_ts"), ("T2", "ites_t")),), test_data="3dhp"),
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
        measured = [r for r in recs if r.get("kit") is not None and r.get("status", "ok") == "ok"]
        values = [r["kit"] for r in measured]
        n = len(values)
        mean, std = _mean_std(values)
        last = recs[-1]
        extra = {}
        for field in ("kit_nomirror", "mirror_rate"):  # means over the seeds that recorded them
            got = [r[field] for r in measured if r.get(field) is not None]
            if got:
                extra[field] = sum(got) / len(got)
        out[key] = {**extra, "mean": mean, "std": std, "n": n, "values": values,
                    "seeds": [r.get("seed", 0) for r in measured], "test_data": last.get("test_data"),
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
    refs = claim.refs()
    seeds, dropped = None, []
    if source == "kit":
        stand_in = _stand_in(claim, values)
        if stand_in:
            return _result(claim, None, [stand_in], [], source, seeds=[])
        values, seeds, dropped = on_common_seeds(values, refs, claim.metric)

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
    complete = bool(verdicts) and len(verdicts) == len(details)
    if dropped:
        details.append(f"compared on seed(s) {', '.join(map(str, seeds))}, the seeds every row of this claim has "
                       f"(also measured on more seeds: {', '.join(dropped)})")
    if close:  # more seeds would go to every row the claim reads, so that all rows keep the same seeds
        close = [ref for ref in refs if _cell(values, ref[0], ref[1], claim.metric) is not None]
    return _result(claim, all(verdicts) if verdicts else None, details, close, source, complete, seeds)


def _result(claim: Claim, passed, details: list, close: list, source: str, complete: bool = False,
            seeds: list | None = None) -> dict:
    metric = METRICS[claim.metric]
    out = {"id": claim.id, "tables": list(claim.tables), "statement": claim.statement,
           "definition": claim.definition(), "metric": claim.metric, "protocol": metric.protocol,
           "passed": passed, "complete": complete, "details": details, "close": sorted(set(close)),
           "source": source}
    if seeds is not None:
        out["seeds"] = seeds
    return out


def _stand_in(claim: Claim, values: dict) -> str:
    """Why a claim about another data set (MPI-INF-3DHP) is not checked here: its rows were tested on a stand-in
    split (no such test data given). Empty when the claim can be checked."""
    if not claim.test_data:
        return ""
    for ref in claim.refs():
        cell = _cell(values, ref[0], ref[1], claim.metric)
        if cell is not None and cell.get("n") and not str(cell.get("test_data") or "").startswith(claim.test_data + ":"):
            return (f"not checked: {ref[0]} was tested on a stand-in ({cell.get('note') or 'not ' + claim.test_data}); "
                    f"the claim is about {claim.test_data} data (--test-data {claim.test_data}:DIR)")
    return ""


def on_common_seeds(values: dict, refs, metric: str) -> tuple:
    """``values`` with the cells of ``refs`` cut down to the seeds every one of them was measured on (a claim
    compares rows on the same seeds: the best of several single-seed rows must not meet a 3-seed mean).
    Returns (values, the common seeds, "table:row (n=k)" of the cells that lost seeds)."""
    cells = {ref: values[(ref[0], ref[1], metric)] for ref in refs
             if values.get((ref[0], ref[1], metric), {}).get("n")}
    if not cells:
        return values, [], []
    common = sorted(set.intersection(*(set(c["seeds"]) for c in cells.values())))
    out, dropped = dict(values), []
    for (table, row), cell in cells.items():
        if len(cell["seeds"]) == len(common):
            continue
        dropped.append(f"{table}:{row} (n={cell['n']})")
        by_seed = dict(zip(cell["seeds"], cell["values"]))
        out[(table, row, metric)] = _cell_on(cell, [by_seed[s] for s in common], common)
    return out, common, dropped


def _mean_std(vals: list) -> tuple:
    """Mean and sample standard deviation (ddof=1; 0 for one value; None, None for none)."""
    n = len(vals)
    mean = sum(vals) / n if n else None
    return mean, (math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else (0.0 if n else None))


def _cell_on(cell: dict, vals: list, seeds: list) -> dict:
    n = len(vals)
    mean, std = _mean_std(vals)
    return {**cell, "mean": mean, "std": std, "n": n, "values": vals, "seeds": seeds,
            "status": cell["status"] if n else "missing"}


def evaluate_claims(values: dict, table_ids=None, source: str = "kit") -> list:
    claims = CLAIMS if table_ids is None else claims_for(table_ids)
    return [evaluate_claim(c, values, source) for c in claims]


def seed_values(values: dict, seed: int) -> dict:
    """The cells of :func:`aggregate` as one seed saw them: each cell's value on ``seed``; a cell not measured on
    ``seed`` has no value (a claim is checked on one seed only where all its rows have that seed)."""
    out = {}
    for key, cell in values.items():
        by_seed = dict(zip(cell.get("seeds", []), cell.get("values", [])))
        value = by_seed.get(seed)
        out[key] = _cell_on(cell, [] if value is None else [value], [] if value is None else [seed])
    return out


def add_seed_verdicts(claims: list, values: dict) -> list:
    """Give every claim result whose rows share two or more seeds ``by_seed``: {seed: passed} checked on each
    of those seeds' own numbers (:func:`seed_values`), and ``stable``: the same verdict on every seed."""
    for c in claims:
        seeds = c.get("seeds") or []
        if len(seeds) < 2:
            continue
        claim = CLAIMS_BY_ID[c["id"]]
        c["by_seed"] = {s: evaluate_claim(claim, seed_values(values, s), c["source"])["passed"] for s in seeds}
        c["stable"] = len(set(c["by_seed"].values())) == 1
    return claims


def paper_values() -> dict:
    """The paper's numbers in the shape of :func:`aggregate` (for checking the claims on the paper itself)."""
    out = {}
    for t in TABLE_LIST:
        for r in t.rows:
            for m in t.metrics:
                out[(t.id, r.id, m)] = {"mean": None, "std": None, "n": 0, "paper": r.paper.get(m),
                                        "protocol": METRICS[m].protocol, "model": r.model, "status": "paper"}
    return out



"""The paper's experiments as data: Tables 1-9 and Figure 6 of ITES (AAAI 2021), their rows, the paper's
numbers, the claims they support, and small formatters / plots shared by the notebooks and the runner.

Nothing here trains anything (that is :mod:`itespy.reproduce`). A row says *what* to run:

* ``overrides`` -- the :class:`itespy.config.Config` fields that differ from the paper's default model
  (the profile and the user's flags are applied around them by :func:`row_config`);
* ``model`` -- whose output the row reports: ``"teacher"`` (ITES-T, after stage 1) or ``"student"``
  (ITES-TS, after stage 2); for the cost rows of Table 9 the network that is measured;
* ``paper`` -- the paper's number for each column (mm for MPJPE / P-MPJPE, % for PCK / AUC, millions of
  parameters and milliseconds for Table 9; ``None`` where the paper gives no number);
* ``input`` -- ``"gt"`` (2D ground truth) or ``"img"`` (CPN detections, needs ``h36m-cpn`` data);
  ``test`` -- ``"own"`` (the test split of the training data) or ``"3dhp"`` (MPI-INF-3DHP, Table 2).

The columns map to the kit's metric protocols through :data:`METRICS` (MPJPE -> ``mpjpe_scaled_flip``,
P-MPJPE -> ``p_mpjpe_flip``, as the authors' code computes them; see :mod:`itespy.metrics`).

    >>> from itespy import experiments as ex
    >>> ex.TABLES["T3"].row("rep_only").paper
    {'MPJPE': 153.5, 'P-MPJPE': 120.4}
    >>> print(ex.paper_table_text("T8"))          # the paper's numbers beside each row's configuration
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .config import Config, make_config
from .metrics import TABLE_PROTOCOLS

# ----------------------------------------------------------------------------------------------------
# Columns
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    name: str  # the paper's column name
    protocol: str  # how the kit computes it
    unit: str
    lower_is_better: bool
    digits: int = 1


METRICS = {
    "MPJPE": Metric("MPJPE", TABLE_PROTOCOLS["MPJPE"], "mm", True),
    "P-MPJPE": Metric("P-MPJPE", TABLE_PROTOCOLS["P-MPJPE"], "mm", True),
    "PCK": Metric("PCK", TABLE_PROTOCOLS["PCK"], "%", False),
    "AUC": Metric("AUC", TABLE_PROTOCOLS["AUC"], "%", False),
    "params": Metric("params", "count_parameters", "M", True, 2),
    "ms": Metric("ms", "inference_ms_batch1", "ms", True, 2),
}

# ----------------------------------------------------------------------------------------------------
# Rows and tables
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    id: str
    label: str
    model: str  # "teacher" (ITES-T) | "student" (ITES-TS); for the cost rows of Table 9: the network measured
    overrides: dict = field(default_factory=dict)
    paper: dict = field(default_factory=dict)
    input: str = "gt"  # "gt" | "img"
    test: str = "own"  # "own" | "3dhp"
    note: str = ""

    @property
    def stage(self) -> str:
        """Which training stages the row needs: 'teacher', 'student' (no teacher: L_KD off) or 'both'."""
        if self.model == "teacher":
            return "teacher"
        if self.model == "student":
            return "both" if self.overrides.get("use_kd", True) else "student"
        return "none"


@dataclass(frozen=True)
class Reference:
    """A row of the paper's comparison tables that the kit does not run (another method)."""
    method: str
    kind: str  # "Fully" | "Weak" | "Unsup"
    values: dict  # column -> number or None


@dataclass(frozen=True)
class Table:
    id: str
    title: str
    caption: str  # the paper's caption, abridged
    notebook: str
    metrics: tuple
    rows: tuple
    kind: str = "ablation"  # "ablation" | "comparison" | "curve" | "cost"
    references: tuple = ()
    reference_columns: tuple = ()
    x: str | None = None  # the Config field on the x axis (Figure 6)
    note: str = ""

    def row(self, row_id: str) -> Row:
        for r in self.rows:
            if r.id == row_id:
                return r
        raise KeyError(f"{self.id}: no row {row_id!r}; expected one of {[r.id for r in self.rows]}")

    @property
    def row_ids(self) -> list:
        return [r.id for r in self.rows]


MM = ("MPJPE", "P-MPJPE")


def _mm(mpjpe, p_mpjpe) -> dict:
    return {"MPJPE": mpjpe, "P-MPJPE": p_mpjpe}


_T1_COLUMNS = ("MPJPE GT", "MPJPE IMG", "P-MPJPE GT", "P-MPJPE IMG")
_T1_REFERENCES = tuple(Reference(m, k, dict(zip(_T1_COLUMNS, v))) for k, m, v in [
    ("Fully", "Chen & Ramanan", (None, 114.2, 57.5, 82.7)),
    ("Fully", "Martinez et al.", (45.5, 62.9, 37.1, 52.1)),
    ("Fully", "IGE-Net", (42.6, 66.0, 37.7, 50.5)),
    ("Fully", "Ci et al.", (36.3, 52.7, 27.9, 42.2)),
    ("Fully", "Pavllo et al.", (37.2, 46.8, 27.2, 36.5)),
    ("Weak", "3DInterpreter", (None, None, 88.6, 98.4)),
    ("Weak", "AIGN", (None, None, 79.0, 97.2)),
    ("Weak", "RepNet", (50.9, 89.9, 38.2, 65.1)),
    ("Weak", "Drover et al.", (None, None, 38.2, 64.6)),
    ("Weak", "Li et al.", (None, 57.0, None, 44.1)),
    ("Unsup", "Pose-GAN", (130.9, 173.2, None, None)),
    ("Unsup", "C3DPO", (95.6, 145.0, None, None)),
    ("Unsup", "Nath et al.", (None, None, 63.8, 89.4)),
    ("Unsup", "Wang et al.", (None, 86.4, None, 62.8)),
    ("Unsup", "Chen et al.", (None, None, 58.0, None)),
    ("Unsup", "ITES-T (paper)", (85.6, 93.7, 54.9, 62.5)),
    ("Unsup", "ITES-TS (paper)", (77.2, 85.3, 51.9, 59.8)),
])

_T2_REFERENCES = tuple(Reference(m, k, {"Training set": s, "PCK": p, "AUC": a}) for k, m, s, p, a in [
    ("Fully", "Mehta et al.", "H3.6M", 64.7, 31.7),
    ("Fully", "HMR", "H3.6M+MPI", 72.9, 36.5),
    ("Fully", "SPIN", "H3.6M+MPI+LSP", 76.4, 37.1),
    ("Weak", "Zhou et al.", "H3.6M", 69.2, 32.5),
    ("Weak", "Li et al.", "H3.6M", 74.1, 41.4),
    ("Unsup", "Chen et al.", "H3.6M", 64.3, 31.6),
    ("Unsup", "ITES-T (paper)", "H3.6M", 65.8, 32.1),
    ("Unsup", "ITES-TS (paper)", "H3.6M", 68.2, 35.2),
])

FIGURE6_ATOMS = (2, 4, 8, 12, 16, 24, 32)

_TABLE_LIST = [
    Table("T1", "Results on Human3.6M (ITES rows of Table 1)",
          "We compare our methods with fully supervised, weakly supervised and unsupervised methods. GT and IMG "
          "denote the input data represented by 2D ground truth keypoints and 2D detected keypoints (CPN).",
          "08_results", MM, (
              Row("ites_t_gt", "ITES-T · GT", "teacher", {}, _mm(85.6, 54.9)),
              Row("ites_ts_gt", "ITES-TS · GT", "student", {}, _mm(77.2, 51.9)),
              Row("ites_t_img", "ITES-T · IMG", "teacher", {}, _mm(93.7, 62.5), input="img"),
              Row("ites_ts_img", "ITES-TS · IMG", "student", {}, _mm(85.3, 59.8), input="img"),
          ), kind="comparison", references=_T1_REFERENCES,
          reference_columns=("MPJPE GT", "MPJPE IMG", "P-MPJPE GT", "P-MPJPE IMG"),
          note="The IMG rows train and test on CPN detections and need --data h36m-cpn:DIR (or h36m:DIR "
               "with the CPN file present); with other data they are skipped."),
    Table("T2", "Results on MPI-INF-3DHP (trained on Human3.6M)",
          "The input is the 2D ground truth keypoints; the models are trained on Human3.6M and tested on the "
          "MPI-INF-3DHP test set with PCK@150 mm and AUC (Mehta et al. 2017).",
          "08_results", ("PCK", "AUC"), (
              Row("ites_t", "ITES-T", "teacher", {}, {"PCK": 65.8, "AUC": 32.1}, test="3dhp"),
              Row("ites_ts", "ITES-TS", "student", {}, {"PCK": 68.2, "AUC": 35.2}, test="3dhp"),
          ), kind="comparison", references=_T2_REFERENCES, reference_columns=("Training set", "PCK", "AUC"),
          note="Needs --test-data 3dhp:DIR; without it PCK/AUC are computed on the test split of --data "
               "(said so in every record)."),
    Table("T3", "Effect of the loss components",
          "Effect of various loss components on training on Human3.6M. The input is the 2D ground truth "
          "keypoints. Once L_KD is used, L_REP and L_RIC train the teacher.",
          "05_ablation_losses", MM, (
              Row("rep_only", "L_REP (ITES-T)", "teacher", {"use_ric": False}, _mm(153.5, 120.4)),
              Row("rep_ric", "L_REP + L_RIC (ITES-T)", "teacher", {}, _mm(85.6, 54.9)),
              Row("rec_only", "L_REC (ITES-TS, no teacher)", "student", {"use_kd": False}, _mm(192.3, 159.7),
                  note="the student alone, trained only by the rotation-equivariance cycle"),
              Row("no_rec", "L_REP + L_RIC + L_KD (ITES-TS)", "student", {"use_rec": False}, _mm(82.4, 54.3)),
              Row("all", "L_REP + L_RIC + L_KD + L_REC (ITES-TS)", "student", {}, _mm(77.2, 51.9)),
          )),
    Table("T4", "Teacher and student networks",
          "Effect of the pose-dictionary-based teacher and the graph-convolution-based student on Human3.6M: "
          "the teacher / student replaced with previous methods (C3DPO teacher, ResFC student).",
          "07_ablation_networks_and_graphs", MM, (
              Row("c3dpo_resfc", "C3DPO teacher + ResFC student", "student",
                  {"teacher": "c3dpo", "student": "resfc"}, _mm(93.2, 60.0)),
              Row("c3dpo_agcn", "C3DPO teacher + AGCN student", "student", {"teacher": "c3dpo"}, _mm(91.7, 59.6)),
              Row("dict_resfc", "Pose-dictionary teacher + ResFC student", "student", {"student": "resfc"},
                  _mm(82.3, 53.6)),
              Row("dict_agcn", "Pose-dictionary teacher + AGCN student", "student", {}, _mm(77.2, 51.9)),
          )),
    Table("T5", "Loss weights of the teacher (λREP, λRIC = 1)",
          "The effect of different loss weights in the teacher network; the output is from the teacher.",
          "06_ablation_dictionary_and_weights", MM, tuple(
              Row(f"lambda_rep_{w:g}", f"λREP = {w:g}, λRIC = 1", "teacher",
                  {} if w == 5 else {"lambda_rep": float(w)}, _mm(m, p))
              for w, m, p in [(1, 144.3, 86.1), (3, 101.5, 65.5), (5, 85.6, 54.9), (8, 92.7, 57.7),
                              (10, 96.7, 62.8)]), x="lambda_rep"),
    Table("T6", "Loss weights of the student (λKD, λREC = 1)",
          "The effect of different loss weights in the student network; the output is from the student (the "
          "final estimate). The teacher is the one trained with λREP = 5, λRIC = 1.",
          "06_ablation_dictionary_and_weights", MM, tuple(
              Row(f"lambda_kd_{w:g}", f"λKD = {w:g}, λREC = 1", "student",
                  {} if w == 5 else {"lambda_kd": float(w)}, _mm(m, p))
              for w, m, p in [(1, 85.2, 54.4), (3, 84.0, 53.3), (5, 77.2, 51.9), (8, 80.2, 52.0),
                              (10, 81.8, 52.9)]), x="lambda_kd"),
    Table("T7", "Feature extractor of the teacher",
          "The effect of different feature extraction modules in the teacher network; the output is from "
          "the teacher.",
          "07_ablation_networks_and_graphs", MM, (
              Row("agcn", "AGCN trunk", "teacher", {"teacher_trunk": "agcn"}, _mm(112.3, 68.6)),
              Row("resfc", "ResFC trunk", "teacher", {}, _mm(85.9, 55.2),
                  note="same configuration as the default teacher (85.6 / 54.9 in Tables 1, 3, 5): a rerun in "
                       "the paper, one cached model in the kit"),
          )),
    Table("T8", "Graphs of the student",
          "The effect of different graph structures in the student network; the output is from the student.",
          "07_ablation_networks_and_graphs", MM, (
              Row("physical", "Physical only", "student", {"graph": "physical"}, _mm(81.1, 52.8)),
              Row("nonphysical", "Nonphysical only", "student", {"graph": "nonphysical"}, _mm(83.3, 53.4)),
              Row("both", "Physical + Nonphysical", "student", {}, _mm(77.2, 51.9)),
          )),
    Table("T9", "Model size and inference time",
          "Model size and inference time; the paper deploys both models on one GTX-1080Ti GPU.",
          "08_results", ("params", "ms"), (
              Row("c3dpo", "C3DPO", "teacher", {"teacher": "c3dpo"}, {"params": 0.53, "ms": 0.17},
                  note="the kit's C3DPO-style teacher (itespy.models.C3DPOTeacher)"),
              Row("ites_ts", "ITES-TS", "student", {}, {"params": 7.27, "ms": 0.28},
                  note="at inference ITES-TS runs the student alone"),
          ), kind="cost",
          note="Parameters: itespy.models.count_parameters of the networks the run builds (the profile's "
               "architecture plus any overrides; the short profiles may narrow it). Inference time: median over "
               "repeated forward passes of one pose (batch size 1) on the current device. The paper's text "
               "calls ITES-TS 'lighter and faster' than C3DPO, but its own numbers (7.27M vs 0.53M, 0.28 vs "
               "0.17 ms) say the opposite."),
    Table("F6", "Pose dictionary size K (Figure 6)",
          "The performance of ITES using different pose dictionary sizes in the teacher network on Human3.6M.",
          "06_ablation_dictionary_and_weights", MM, tuple(
              Row(f"K{k}", f"K = {k}", "teacher", {} if k == 12 else {"num_atoms": k}, _mm(None, None))
              for k in FIGURE6_ATOMS), kind="curve", x="num_atoms",
          note="Figure 6's numbers are not in the paper's text: only that K = 12 was chosen and that a "
               "relatively small or large K degrades the performance. The paper does not say whether the "
               "figure plots ITES-T or ITES-TS; the kit plots the teacher, whose dictionary K is."),
]

TABLES = {t.id: t for t in _TABLE_LIST}
TABLE_IDS = tuple(TABLES)

NOTEBOOKS = {}
for _t in _TABLE_LIST:
    NOTEBOOKS.setdefault(_t.notebook, []).append(_t.id)
NOTEBOOKS = {k: tuple(NOTEBOOKS[k]) for k in sorted(NOTEBOOKS)}  # notebook stem -> table ids (05, 06, 07, 08)


def get_table(table_id: str) -> Table:
    key = str(table_id).upper()
    if key not in TABLES:
        raise KeyError(f"table {table_id!r}: expected one of {', '.join(TABLE_IDS)}")
    return TABLES[key]


def parse_only(only) -> list:
    """``"T3,f6"`` or ``["T3", "F6"]`` -> ``["T3", "F6"]`` in registry order (None/"" -> every table)."""
    if not only:
        return list(TABLE_IDS)
    items = only.split(",") if isinstance(only, str) else list(only)
    wanted = {get_table(s.strip()).id for s in items if s.strip()}
    return [t for t in TABLE_IDS if t in wanted]


# ----------------------------------------------------------------------------------------------------
# Configurations
# ----------------------------------------------------------------------------------------------------

# Notebook default (nbval, < 2 min on 2 cores): the smoke profile further shrunk to tiny networks and one
# epoch. The numbers it gives only show that the pipeline runs; `python -m itespy reproduce` passes {}.
QUICK_OVERRIDES = {"max_train": 128, "max_test": 64, "teacher_epochs": 1, "student_epochs": 1, "batch_size": 64,
                   "teacher_hidden": 64, "teacher_bottleneck": 32, "teacher_blocks": 2, "student_channels": 16,
                   "student_blocks": 2, "cycle_copies": 1}

# How many seeds the runner spends on the rows of a claim that is close (|Δ| < CLOSE_FRACTION of the value).
PROFILE_SEEDS = {"smoke": 1, "tutorial": 3, "paper": 3}
CLOSE_FRACTION = 0.03


def row_data(row: Row, data: str):
    """The DATA spec a row trains on, given the user's ``--data``; ``(None, reason)`` if it cannot run.

    GT rows use ``h36m:DIR`` when given ``h36m-cpn:DIR`` (and vice versa for IMG rows)."""
    prefix, _, path = data.partition(":")
    if row.input == "img":
        if prefix in ("h36m", "h36m-cpn"):
            return f"h36m-cpn:{path}", ""
        return None, ("the IMG column trains and tests on CPN detections: needs --data h36m:DIR or "
                      f"h36m-cpn:DIR (got {data!r}); see docs/data.md")
    if prefix == "h36m-cpn":
        return f"h36m:{path}", ""
    return data, ""


def row_config(table_id: str, row_id: str, profile: str = "smoke", data: str = "synthetic", seed: int = 0,
               device: str = "auto", variant: str = "paper", overrides: dict | None = None):
    """The Config of one row: paper defaults -> variant -> profile -> user overrides -> the row's own
    overrides (the row's always win: they are what the row is about)."""
    row = get_table(table_id).row(row_id)
    spec, _ = row_data(row, data)
    return make_config(profile, variant, **{**(overrides or {}), "data": spec or data, "seed": seed,
                                            "device": device, **row.overrides})


def config_summary(overrides: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in overrides.items()) if overrides else "paper default"


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


def paper_values() -> dict:
    """The paper's numbers in the shape of :func:`aggregate` (for checking the claims on the paper itself)."""
    out = {}
    for t in _TABLE_LIST:
        for r in t.rows:
            for m in t.metrics:
                out[(t.id, r.id, m)] = {"mean": None, "std": None, "n": 0, "paper": r.paper.get(m),
                                        "protocol": METRICS[m].protocol, "model": r.model, "status": "paper"}
    return out


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


def results_table_rows(table_id: str, values: dict):
    """Header and rows of a kit | paper | Δ table from aggregated values."""
    t = get_table(table_id)
    header = ["row"]
    for m in t.metrics:
        unit = METRICS[m].unit
        header += [f"{m} kit ({unit})", "paper", "Δ"]
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
            n = max(n, 0 if cell is None else cell.get("n", 0))
        line.append(str(n) if n else "-")
        rows.append(line)
    return header, rows


def results_table_text(table_id: str, values: dict, markdown: bool = False) -> str:
    t = get_table(table_id)
    header, rows = results_table_rows(table_id, values)
    body = format_grid(header, rows, markdown=markdown)
    notes = [f"{r.label}: {values[(t.id, r.id, t.metrics[0])]['note']}" for r in t.rows
             if (t.id, r.id, t.metrics[0]) in values and values[(t.id, r.id, t.metrics[0])].get("note")]
    if markdown:
        bullets = ["", *[f"* {n}" for n in notes]] if notes else []
        return "\n".join([protocol_line(t) + ". Δ = kit − paper.", "", body] + bullets)
    return "\n".join([f"{t.id} · {t.title}", protocol_line(t) + ". Δ = kit − paper.", body] + notes)


def claim_result_text(result: dict, markdown: bool = False) -> str:
    mark = {True: "✔", False: "✘", None: "–"}[result["passed"]]
    head = f"{mark} {result['id']} [{', '.join(result['tables'])}] {result['statement']}"
    if markdown:
        return "\n".join([f"* {head}  ", f"  check: {result['definition']}  "]
                         + [f"  {d}  " for d in result["details"]])
    return "\n".join([head, f"    check: {result['definition']}"] + [f"    {d}" for d in result["details"]])


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
    fig.legend(handles, labels, loc="upper right", ncol=len(labels), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    if path is not None:
        from .viz import save_figure
        save_figure(fig, path)
    return fig


def _wrap(label: str, width: int = 16) -> str:
    import textwrap
    return "\n".join(textwrap.wrap(label.replace(" · ", " "), width)) or label

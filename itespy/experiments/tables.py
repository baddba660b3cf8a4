"""The paper's tables as data: columns (metrics), rows and tables of Tables 1-9 and Figure 6, and the
configuration each row trains (:func:`row_config`)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..config import make_config
from ..metrics import TABLE_PROTOCOLS


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

# The flat pose (every joint at the root's depth) on the paper's test data: Human3.6M S9 and S11, every 5th
# frame, four cameras (105,532 poses), GT 2D, scored with the authors' own evaluation code (MPJPE after scale
# calibration with the depth mirror / P-MPJPE with the mirror), in mm. Source: ../shared/reference/
# ITES-code-facts.md, "Accuracy of the authors' code". Errors in mm do not compare across data sets; a
# fraction of the flat pose on the same test split does (the paper's ITES-T is 85.6 / 163.3 = 0.52 of flat).
PAPER_FLAT_H36M = {"MPJPE": 163.3, "P-MPJPE": 106.7}
# The same error without the depth mirror (each row's record keeps it beside the paper's protocol, as kit_nomirror,
# with the share of poses whose mirror scored better, mirror_rate): how much a number rests on the mirror.
UNFLIPPED_PROTOCOLS = {"MPJPE": "mpjpe_scaled", "P-MPJPE": "p_mpjpe"}

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

# Table 7's AGCN teacher trunk: the paper gives no size; the kit uses the AGCN student's (64 channels per
# joint, 8 graph blocks), set here through the teacher's size fields so that the row's config says what trains.
AGCN_TEACHER_TRUNK = {"teacher_trunk": "agcn", "teacher_hidden": 64, "teacher_blocks": 8}


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

TABLE_LIST = [
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
              Row("agcn", "AGCN trunk", "teacher", AGCN_TEACHER_TRUNK, _mm(112.3, 68.6)),
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

TABLES = {t.id: t for t in TABLE_LIST}
TABLE_IDS = tuple(TABLES)

NOTEBOOKS = {}
for _t in TABLE_LIST:
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


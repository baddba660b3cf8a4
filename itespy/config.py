"""One configuration dataclass with the paper's defaults, plus named profiles and variants.

* ``variant="paper"`` follows the paper (Sec. 3-4.2); ``variant="reference"`` follows the authors' public code
  where it differs (docs/paper_vs_code.md lists each difference and the field that controls it).
* Profiles size a run: ``smoke`` (CI, seconds to minutes on CPU), ``tutorial`` (a 2-core CPU, minutes per
  training), ``paper`` (the paper's epochs and full data, meant for a GPU).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
from dataclasses import dataclass, field

PROFILES = ("smoke", "tutorial", "paper")
VARIANTS = ("paper", "reference")
TEACHERS = ("dictionary", "c3dpo")
TEACHER_TRUNKS = ("resfc", "agcn")
STUDENTS = ("agcn", "resfc", "semgcn")
GRAPHS = ("both", "physical", "nonphysical")
STAGES = ("teacher", "student", "both")
# Fields that do not change a result (the device is recorded, not hashed; eval batching is exact).
RUN_FIELDS = ("device", "eval_batch_size", "extra")
# Fields only stage 2 reads: reset to defaults in a teacher's configuration so every student shares its teacher.
STUDENT_FIELDS = ("student", "graph", "student_channels", "student_blocks", "use_kd", "use_rec", "lambda_kd",
                  "lambda_rec", "student_epochs", "kd_norm", "rec_rotation", "student_optimizer",
                  "student_lr_decay_every", "student_weight_decay", "rec_copies", "kd_target",
                  "student_lr")
INT_FIELDS = ("stride", "num_atoms", "teacher_hidden", "teacher_bottleneck", "teacher_blocks", "student_channels",
              "student_blocks", "cycle_copies", "teacher_epochs", "student_epochs", "batch_size", "lr_decay_every",
              "root_align_epochs", "seed", "eval_batch_size", "threads", "val_every")
OPTIONAL_INT_FIELDS = ("max_train", "max_test")
BOOL_FIELDS = ("use_rep", "use_ric", "use_kd", "use_rec", "dictionary_bias", "extra_bottleneck", "reference_init")
FLOAT_FIELDS = ("lambda_rep", "lambda_ric", "lambda_kd", "lambda_rec", "lambda_canon", "lambda_hand", "lr", "momentum",
                "weight_decay", "lr_decay")


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass
class Config:
    # data
    data: str = "synthetic"
    max_train: int | None = None  # evenly subsample the training split to at most this many poses
    max_test: int | None = None
    stride: int = 1
    # model (paper Sec. 4.2)
    variant: str = "paper"
    num_atoms: int = 12  # K, the pose dictionary size
    teacher: str = "dictionary"  # or "c3dpo" (Table 4)
    teacher_trunk: str = "resfc"  # or "agcn" (Table 7)
    camera: str = "axis_angle"  # teacher's camera head: 3-vector -> R̂ by the so(3) exponential map | "six_d"
    # The teacher trunk's sizes, also the ResFC student's (Table 4). Table 7's AGCN trunk reads teacher_hidden
    # and teacher_blocks (its row sets the AGCN student's 64 x 8: experiments.AGCN_TEACHER_TRUNK).
    teacher_hidden: int = 1024  # ResFC trunk: features; AGCN trunk: channels per joint
    teacher_bottleneck: int = 256  # ResFC trunk only (the AGCN trunk has no bottleneck)
    teacher_blocks: int = 6  # ResFC: residual layers; AGCN: graph blocks (even: they run in residual pairs)
    student: str = "agcn"  # "resfc" (Table 4), "semgcn" (reference code)
    graph: str = "both"  # "physical" / "nonphysical" (Table 8)
    student_channels: int = 128
    student_blocks: int = 8
    # losses (Eq. 2, 3, 6, 7) and weights
    use_rep: bool = True
    use_ric: bool = True
    use_kd: bool = True
    use_rec: bool = True
    lambda_rep: float = 5.0
    lambda_ric: float = 1.0
    lambda_kd: float = 5.0
    lambda_rec: float = 1.0
    lambda_canon: float = 1.0  # C3DPO-style teacher only
    lambda_hand: float = 0.0  # the kit's handedness prior on the teacher (not in the paper; 0 = off)
    cycle_copies: int = 4  # random rotations drawn per pose in each cycle
    rec_copies: int | None = None  # rotations per pose in the student's cycle (Eq. 7); None: as cycle_copies
    # optimisation (paper: SGD, lr 1e-3, 40 + 30 epochs)
    teacher_epochs: int = 40
    student_epochs: int = 30
    batch_size: int = 128
    optimizer: str = "sgd"  # paper: SGD (every profile; Adam collapsed the teacher, see PROFILE_SETTINGS)
    lr: float = 1e-3
    student_optimizer: str = "same"  # stage 2's optimiser: "same" as the teacher's, or "sgd" / "adam"
    student_lr: float | None = None  # stage 2's learning rate; None: as lr
    momentum: float = 0.9  # paper silent; the authors' code uses 0.9
    weight_decay: float = 0.0
    lr_decay_every: int = 0  # epochs; 0 = constant learning rate
    lr_decay: float = 0.5
    student_lr_decay_every: int | None = None  # stage 2's decay period in epochs; None: as lr_decay_every
    student_weight_decay: float | None = None  # stage 2's weight decay; None: as weight_decay
    # reference-code behaviours (set by variant="reference")
    dictionary_bias: bool = False
    extra_bottleneck: bool = False
    reference_init: bool = False
    root_align_epochs: int = 0
    loss_norm: str = "squared"  # "squared" (paper Eq. 2/3/7: squared Frobenius / N) or "euclidean"
    kd_norm: str = "squared"  # "squared" (Eq. 6) or "l1"
    kd_target: str = "teacher"  # L_KD's target: the teacher's depth (Eq. 6), or its mean over the pose's mirror
    # image ("flip_mean") and in-plane camera rolls too ("view_mean"): inference.teacher_depth_labels
    ric_rotation: str = "haar"  # "haar" (uniform SO(3)), "axis_angle" (angle ~ U[0, π]) or "upright" (R_y R̂)
    rec_rotation: str = "haar"  # "haar" or "vertical" (about y, angle ~ U[0, 2π])
    # what is scored and kept
    teacher_output: str = "lifted"  # teacher 3D: input 2D lifted with its depth (authors' code) | "dictionary"
    checkpoint: str = "best_val"  # keep the checkpoint best on the validation split (training clips) | "last"
    val_every: int = 0  # training steps between validation checks; 0 = once per epoch
    # run
    threads: int = 1  # torch CPU threads of a training: part of the result (float sums), never the machine's
    profile: str = "paper"
    seed: int = 0
    device: str = "auto"
    eval_batch_size: int = 1024
    extra: dict = field(default_factory=dict)  # free-form notes carried into results

    def validate(self) -> "Config":
        """Check every field's type and range; raise ValueError naming the field and what was expected."""
        choices = {"variant": VARIANTS, "teacher": TEACHERS, "teacher_trunk": TEACHER_TRUNKS,
                   "student": STUDENTS, "graph": GRAPHS, "profile": PROFILES,
                   "optimizer": ("sgd", "adam"), "student_optimizer": ("same", "sgd", "adam"),
                   "loss_norm": ("squared", "euclidean"), "kd_norm": ("squared", "l1"),
                   "kd_target": ("teacher", "flip_mean", "view_mean"),
                   "ric_rotation": ("haar", "axis_angle", "upright"), "rec_rotation": ("haar", "vertical"),
                   "teacher_output": ("lifted", "dictionary"), "camera": ("axis_angle", "six_d"),
                   "checkpoint": ("best_val", "last")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"config.{name}: expected one of {allowed}, got {getattr(self, name)!r}")
        for name in INT_FIELDS + OPTIONAL_INT_FIELDS:
            value = getattr(self, name)
            if not (value is None and name in OPTIONAL_INT_FIELDS) and not _is_int(value):
                expected = "an integer or None" if name in OPTIONAL_INT_FIELDS else "an integer"
                raise ValueError(f"config.{name}: expected {expected}, got {value!r} ({type(value).__name__})")
        if self.student_lr_decay_every is not None and not (_is_int(self.student_lr_decay_every)
                                                            and self.student_lr_decay_every >= 0):
            raise ValueError(f"config.student_lr_decay_every: expected a number of epochs >= 0 or None (as "
                             f"lr_decay_every), got {self.student_lr_decay_every!r}")
        if self.student_lr is not None and (
                isinstance(self.student_lr, bool) or not isinstance(self.student_lr, numbers.Real)
                or not math.isfinite(self.student_lr) or self.student_lr <= 0):
            raise ValueError(f"config.student_lr: expected a positive learning rate or None (as lr), "
                             f"got {self.student_lr!r}")
        if self.rec_copies is not None and not (_is_int(self.rec_copies) and self.rec_copies >= 1):
            raise ValueError(f"config.rec_copies: expected a positive integer or None (as cycle_copies), "
                             f"got {self.rec_copies!r}")
        if self.student_weight_decay is not None and (
                isinstance(self.student_weight_decay, bool) or not isinstance(self.student_weight_decay, numbers.Real)
                or not math.isfinite(self.student_weight_decay) or self.student_weight_decay < 0):
            raise ValueError(f"config.student_weight_decay: expected a finite number >= 0 or None (as "
                             f"weight_decay), got {self.student_weight_decay!r}")
        for name in ("teacher_epochs", "student_epochs", "lr_decay_every", "root_align_epochs", "val_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"config.{name}: expected a number of epochs >= 0, got {getattr(self, name)}")
        for name in ("batch_size", "num_atoms", "cycle_copies", "eval_batch_size", "stride", "teacher_hidden",
                     "teacher_bottleneck", "teacher_blocks", "student_channels", "student_blocks", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"config.{name}: expected a positive integer, got {getattr(self, name)}")
        if self.teacher_trunk == "agcn" and self.teacher_blocks % 2:
            raise ValueError(f"config.teacher_blocks: the AGCN teacher trunk runs its graph blocks in residual pairs; "
                             f"expected an even number, got {self.teacher_blocks}")
        for name in OPTIONAL_INT_FIELDS:
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"config.{name}: expected a positive number of poses (or None for all of them), "
                                 f"got {getattr(self, name)}")
        for name in BOOL_FIELDS:
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"config.{name}: expected True or False, got {getattr(self, name)!r}")
        for name in FLOAT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
                raise ValueError(f"config.{name}: expected a finite number >= 0, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"config.lr: expected a positive learning rate, got {self.lr}")
        if not self.lr_decay > 0:
            raise ValueError(f"config.lr_decay: expected a positive factor, got {self.lr_decay}")
        if not isinstance(self.device, str) or (self.device not in ("auto", "cpu", "cuda")
                                                and not self.device.startswith("cuda:")):
            raise ValueError(f"config.device: expected auto, cpu, cuda or cuda:N, got {self.device!r}")
        from .data.spec import parse_spec  # lazy: the data layer imports torch
        parse_spec(self.data)  # an unknown DATA prefix is an error before any data is read
        return self

    def replace(self, **changes) -> "Config":
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"config: unknown field(s) {sorted(unknown)}; "
                             f"expected names from {[f.name for f in dataclasses.fields(self)]}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        return cls().replace(**d)


# Differences between the paper and the authors' public code (docs/paper_vs_code.md).
VARIANT_SETTINGS = {
    "paper": {},
    "reference": dict(student="semgcn", student_blocks=4, dictionary_bias=True, extra_bottleneck=True,
                      reference_init=True, root_align_epochs=15, loss_norm="euclidean", kd_norm="l1",
                      ric_rotation="axis_angle", rec_rotation="vertical", weight_decay=5e-4,
                      lr_decay_every=15, teacher_epochs=50, student_epochs=50),
}

# Profile sizes and the CPU recipe (docs/paper_vs_code.md, "The CPU recipe"; chosen with
# bench/recipe_search.py on the Bandai dev set, teacher scored the authors' way, flat pose 88.3 mm):
# * SGD as the paper says (momentum 0.9, weight decay 5e-4 as the authors' code, batch 128, 4 cycle copies).
#   Adam collapsed the teacher (one canonical pose for every input, spread 0.0007 vs 0.03).
# * reference_init (the authors' N(0, 0.01) weights; the paper is silent): PyTorch's default init starts the
#   dictionary poses ~5x too large and the teacher scored 152-211 mm through 150 steps at lr 2e-3 (diverged
#   at 5e-3).
# * loss_norm="euclidean" (the authors' norm) for the short profiles: with the paper's squared norm the
#   teacher peaked at 79.6 mm after 150 steps (lr 5e-3) and drifted back to 98.7 mm by step 500; lambda_ric 5
#   or 25 or a dictionary bias did not fix it (82.9, 76.1 with a collapsing canonical pose, 97.0). The
#   Euclidean norm reached 71.4 mm at step 150 and held 73-74 mm to step 400. The paper profile keeps Eq. 2's
#   squared norm.
# * checkpoint chosen on a validation split of the training clips (checked every val_every steps).
# * the student trains with Adam (lr 1e-3): with SGD lr 1e-3 it stalled at 83-84 mm through 300 steps (its
#   teacher 72.7), with SGD lr 1e-2 it diverged; Adam reached 79.5 mm at step 300 (then wandered, which the
#   best-on-validation checkpoint absorbs). Adam's collapse was the teacher's canonical pose; the student has
#   none.
# * the student's cycle turns poses about the vertical axis (rec_rotation="vertical", the authors' choice; the
#   paper only says R_rand in SO(3)): on synthetic data (smoke, Adam) a Haar-uniform L_REC held the student
#   at 100.9 mm after 200 steps (and 109.6 in chapter 04, worse than the flat pose, 101.6); vertical turns gave
#   81.3 mm; without L_REC at all 79.7 mm (teacher 79).
# * L_KD with the authors' L1 norm (kd_norm="l1"), matching the Euclidean norm of L_REC: with Eq. 6's squared
#   norm the KD gradient shrinks with the error while the Euclidean L_REC's does not, so the cycle dominated and
#   the student wandered (validation MPJPE 76.5-95.4 between steps 351 and 1404, Bandai, seed 0); with L1 it
#   held 77.0-80.2 (test 63.6 / 43.8 mm at step 702 against its teacher's 74.7 / 50.2). A step decay of the
#   student's learning rate, 128 channels, or keeping the cycle's passes out of the batch-norm statistics did
#   not steady the squared-norm student (bench/results/student_*.log).
SHORT_PROFILE_TRAINING = dict(optimizer="sgd", lr=1e-3, momentum=0.9, weight_decay=5e-4, batch_size=128,
                              cycle_copies=4, reference_init=True, loss_norm="euclidean", student_channels=64,
                              student_optimizer="adam", rec_rotation="vertical", kd_norm="l1")
# The tutorial teacher: the upright cycle (docs/paper_vs_code.md, "Long teacher runs") for 6 epochs (~1,400 steps).
# With the uniform cycle the teacher is best after ~500 SGD steps and then swings 84-119 mm (Bandai, 10,000 steps,
# its depth sign a coin toss); with R_rand = R_y R̂ it keeps learning to ~2,000 steps (69.9 mm) and ends 10,000
# at 76.0. At tutorial scale (3 seeds) ITES-T 66.2 ± 1.2 mm, ITES-TS 62.5 ± 1.5, against 72.8 ± 0.7 / 65.0 ± 1.9 with
# the uniform cycle for 2 epochs. The smoke profile keeps the uniform cycle: its ~190 steps are before the upright
# cycle's gain shows (synthetic, seed 0: ITES-T 94.9 mm upright vs 79.5 uniform).
# The handedness prior (lambda_hand = 1, losses.handedness_loss on R̂ Ŷt and the lifted pose; not in the paper)
# since 2026-12-06: without it the teacher turned every body the same way and its depth sign was right for half
# the views (mirror rate 0.5); with it the teacher learns the signs (mirror rate 0.01-0.04) and scores 55-57 / 37-38
# mm instead of 65-68 / 46-47 (docs/paper_vs_code.md, "Why the sign was a coin toss"). With the former 3-epoch
# student recipe the student no longer beat this teacher at tutorial scale (TUTORIAL_STUDENT below).
# One L_RIC rotation per pose instead of 4 (since 2026-12-06, as the student's rec_copies): the same
# teacher at about a third of the time (Bandai, seeds 0/1/2: 51.3 / 34.1, 55.2 / 37.1, 55.4 / 36.5 mm in 143-156 s,
# mean 54.0 / 35.9, against 54.0 / 36.4, 55.5 / 37.2, 53.7 / 35.8 in 477 s, mean 54.4 / 36.5, that with some other
# load; bench/results/long/teacher_copies.jsonl).
# The teachers were 58 % of the tutorial run's time (3.86 worker-hours, 2026-12-06).
# The 6D camera head (camera="six_d", since 2026-12-06; docs/paper_vs_code.md, "The camera head"): with the authors'
# axis-angle head the one-rotation teacher learnt on the profile's 30,000 poses but ran away on all 114,420 Bandai
# poses, its camera head's output growing to tens of radians (the same R̂ reached again every 2π). The 6D head is
# continuous and ignores its output's length; the tutorial teachers of seeds 0/1/2 score 51.7 / 35.5, 47.5 / 34.4,
# 50.0 / 35.0 mm (mean 49.7 / 35.0) against 51.3 / 34.1, 55.2 / 37.1, 55.4 / 36.5 (54.0 / 35.9) with the
# axis-angle head, in the same time, and on all poses it keeps learning for 10,000 steps.
TUTORIAL_TEACHER = dict(ric_rotation="upright", teacher_epochs=6, lambda_hand=1.0, cycle_copies=1, camera="six_d")
# The tutorial student (since 2026-12-06; docs/paper_vs_code.md, "The student after the prior"; bench/student_check.py,
# one fixed teacher per seed, bench/results/long/student_checks.jsonl): 6 epochs with the learning rate halved every
# 2, no weight decay in stage 2, and one L_REC rotation per pose instead of 4. Seeds 0/1/2: ITES-TS 50.9 / 35.3,
# 53.6 / 37.3, 50.9 / 36.3 mm against its teachers' 54.0 / 36.4, 55.5 / 37.2, 53.7 / 35.8 (better in MPJPE on every
# seed, level in P-MPJPE); the former 3 epochs gave 54.5 / 40.0 and 53.6 / 41.5 (seeds 0, 1). In 221 s against 250 s:
# one rotation or four gave the same student (seed 0: 50.9 / 35.3 vs 50.7 / 35.1) at 2.3x less time per step.
# L_KD's target averaged over 6 views of each pose (kd_target="view_mean", since 2026-12-06; docs/paper_vs_code.md,
# "Distillation targets"): from the one-rotation teachers of seeds 0/1/2 (54.0 / 35.9 mean) the students score
# 47.2 / 33.4, 50.5 / 36.0, 49.9 / 34.6 mm (mean 49.2 / 34.7) against 49.5 / 34.8, 52.2 / 36.5, 51.1 / 35.1 (mean
# 50.9 / 35.5) with the plain target: better on every seed in both metrics, and better than the teacher in P-MPJPE
# on every seed (+0.7, +1.1, +1.9 mm), for 5 more teacher passes over the training poses (seconds).
# Adam at twice the teacher's rate in stage 2 (student_lr=2e-3, since 2026-12-06; docs/paper_vs_code.md, "The
# student's plateau"): from the 6D teachers of seeds 0/1/2 (51.7 / 35.5, 47.5 / 34.4, 50.0 / 35.0) the students score
# 49.2 / 34.7, 47.9 / 34.8, 46.5 / 33.2 mm (mean 47.9 / 34.2) against 49.6 / 35.5, 49.5 / 36.2, 46.1 / 33.8 (48.4 /
# 35.2) at 1e-3: better in P-MPJPE on every seed, in the same time; 3e-3 gave 48.3 / 34.2.
TUTORIAL_STUDENT = dict(student_epochs=6, student_lr_decay_every=2, student_weight_decay=0.0, rec_copies=1,
                        kd_target="view_mean", student_lr=2e-3)
PROFILE_SETTINGS = {
    "smoke": dict(max_train=8192, max_test=1024, teacher_epochs=3, student_epochs=3, val_every=32,
                  **SHORT_PROFILE_TRAINING),
    "tutorial": dict(max_train=30000, max_test=4096, val_every=50,
                     **{**SHORT_PROFILE_TRAINING, **TUTORIAL_TEACHER, **TUTORIAL_STUDENT}),
    "paper": dict(),
}


def make_config(profile: str = "paper", variant: str = "paper", **overrides) -> Config:
    """The paper's defaults, then the variant's differences, then the profile's sizes, then overrides."""
    if profile not in PROFILES:
        raise ValueError(f"profile: expected one of {PROFILES}, got {profile!r}")
    if variant not in VARIANTS:
        raise ValueError(f"variant: expected one of {VARIANTS}, got {variant!r}")
    cfg = Config(profile=profile, variant=variant)
    cfg = cfg.replace(**VARIANT_SETTINGS[variant])
    cfg = cfg.replace(**PROFILE_SETTINGS[profile])
    return cfg.replace(**{k: v for k, v in overrides.items() if v is not None}).validate()


def teacher_config(cfg: Config) -> Config:
    """The configuration of the teacher ``cfg`` needs: the student's fields reset to their defaults."""
    defaults = Config()
    return cfg.replace(**{f: getattr(defaults, f) for f in STUDENT_FIELDS})


def result_fields(cfg: Config) -> dict:
    """The fields that decide a training's result: every field but :data:`RUN_FIELDS` (what keys hash)."""
    return {k: v for k, v in cfg.to_dict().items() if k not in RUN_FIELDS}


def config_key(cfg: Config, stage: str = "both") -> str:
    """A short hash of what decides a training's result: every field but :data:`RUN_FIELDS`; for
    ``stage="teacher"`` only the teacher's (:func:`teacher_config`). Equal keys, equal trainings."""
    if stage not in STAGES:
        raise ValueError(f"stage: expected one of {STAGES}, got {stage!r}")
    fields = result_fields(teacher_config(cfg) if stage == "teacher" else cfg)
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:12]


# The most training poses the one-rotation teacher with the authors' axis-angle camera head was measured to learn
# on; on all 114,420 Bandai poses its camera head's output grew to tens of radians and its depth ran away
# (docs/paper_vs_code.md, "The camera head"). With the 6D head (the tutorial profile's) it learnt on all of them.
ONE_ROTATION_TESTED_POSES = 30_000


def one_rotation_warning(cfg: Config, stage: str) -> str | None:
    """A warning when a teacher with one L_RIC rotation per pose and the axis-angle camera head trains on more
    poses than that combination was measured on (``itespy train`` prints it)."""
    if stage == "student" or cfg.cycle_copies != 1 or cfg.camera != "axis_angle":
        return None
    if cfg.max_train is not None and cfg.max_train <= ONE_ROTATION_TESTED_POSES:
        return None
    return (f"warning: the teacher trains with one L_RIC rotation per pose (cycle_copies=1) and the axis-angle "
            f"camera head on up to {cfg.max_train or 'all'} poses; that was measured to learn on up to "
            f"{ONE_ROTATION_TESTED_POSES:,} and ran away in depth on all 114,420 Bandai poses, where the 6D camera "
            "head or 4 rotations learnt. Consider camera=six_d or cycle_copies=4 (make_config(..., camera='six_d'), "
            "or reproduce --set camera=six_d; docs/paper_vs_code.md, \"The camera head\").")

"""What the student's gain over its teacher costs (issue "ITES keeps learning", item 2): for each cell (teacher
epochs x student recipe), every seed's teacher and student test scores, their gain (teacher - student, mm; +: the
student is better) and the pair's cost in seconds, the mean gain against the seeds' noise (hypot of the teachers'
and the students' standard deviations, the test of "better by more than the seeds' std") and against the spread of
the per-seed gains (``gain_std``: each student is compared with its own seed's teacher, so the teachers' spread
cancels); saves JSON and a figure.

    python bench/student_budget.py --cell '6+6 (profile)' 6 '{}' \\
        --cell '12+17' 12 '{"student_epochs": 17, "student_lr_decay_every": 6}' \\
        --out bench/results/long/student_budget.json --plot bench/results/long/student_budget.png

Students come from ``bench/student_check.py`` lines (``--students``), teachers from ``bench/teacher_check.py``
lines (``--teachers``). A student line belongs to a cell when its effective recipe (the profile's student fields
with the cell's overrides, and the training subsample) is the cell's, and its teacher is the cell's teacher: a
teacher line of the same data, seed and epoch count (no other override) whose test scores the student line's
teacher has (one seed, one result: the same teacher trained again scores the same to the 0.1 mm)."""
from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

from itespy.config import STUDENT_FIELDS, make_config
from itespy.io import atomic_savefig, atomic_write_json

BANDAI = "mocap:../shared/data/bandai/bandai_h36m17.npz"
METRICS = (("mpjpe_scaled_flip", "MPJPE"), ("p_mpjpe_flip", "P-MPJPE"))
TEACHER_KEYS = {"seed", "teacher_epochs"}


def _lines(path: Path) -> list:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def _std(values: list) -> float:
    """The sample standard deviation; 0 for a single seed."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


def teacher_lines(teachers: list, data: str, profile: str, teacher_epochs: int) -> dict:
    """{seed: teacher line} of the plain teachers (only seed and epoch count overridden) of one cell."""
    base = make_config(profile)
    found = {}
    for t in teachers:
        o = t["overrides"]
        if (t["data"] != data or t["profile"] != profile or t.get("camera") != base.camera or t.get("warmup", 0)
                or set(o) - TEACHER_KEYS
                or o.get("teacher_epochs", base.teacher_epochs) != teacher_epochs):
            continue
        found.setdefault(o["seed"], t)
    return found


def _effective(recipe: dict, overrides: dict, profile_lr: float) -> dict:
    """A student recipe with its stage-2 rate resolved (``student_lr`` None, or absent in lines written before the
    field existed: the run's ``lr``, which with a fixed teacher reaches the student only)."""
    out = {k: v for k, v in recipe.items() if k != "student_lr"}
    out["student_lr"] = recipe.get("student_lr") or overrides.get("lr", profile_lr)
    return out


def cell_rows(students: list, teachers: dict, profile: str, overrides: dict) -> dict:
    """{seed: (teacher line, student line)} of one cell; two runs of the same recipe must agree."""
    base = make_config(profile)
    cfg = base.replace(**overrides)
    recipe = _effective({k: getattr(cfg, k) for k in STUDENT_FIELDS}, overrides, base.lr)
    max_train = overrides.get("max_train", base.max_train)
    rows = {}
    for s in students:
        teacher = teachers.get(s["seed"])
        if (teacher is None or "kd_target" in s or _effective(s["student_recipe"], s["overrides"], base.lr) != recipe
                or s["overrides"].get("max_train", base.max_train) != max_train
                or any(s["teacher"]["test"][k] != teacher[k] for k, _ in METRICS)):
            continue
        if s["seed"] in rows:
            before = rows[s["seed"]][1]["student"]["test"]
            if any(before[k] != s["student"]["test"][k] for k, _ in METRICS):
                raise ValueError(f"seed {s['seed']}: two runs of recipe {overrides} disagree: {before} vs "
                                 f"{s['student']['test']}")
            continue
        rows[s["seed"]] = (teacher, s)
    return rows


def summarise(label: str, teacher_epochs: int, overrides: dict, rows: dict) -> dict:
    seeds = {}
    for seed, (t, s) in sorted(rows.items()):
        seeds[seed] = {"teacher": {k: t[k] for k, _ in METRICS}, "student": {k: s["student"]["test"][k] for k, _ in METRICS},
                       "gain": {k: round(t[k] - s["student"]["test"][k], 1) for k, _ in METRICS},
                       "seconds": {"teacher": t["seconds"], "student": s["seconds"]}}
        if "test_unaugmented" in s["student"]:
            seeds[seed]["gain_unaugmented"] = {k: round(s["teacher"]["test_unaugmented"][k]
                                                        - s["student"]["test_unaugmented"][k], 1) for k, _ in METRICS}
    out = {"label": label, "teacher_epochs": teacher_epochs, "student_overrides": overrides, "seeds": seeds}
    if seeds:
        out["pair_seconds"] = round(sum(v["seconds"]["teacher"] + v["seconds"]["student"] for v in seeds.values())
                                    / len(seeds))
        for k, _ in METRICS:
            t = [v["teacher"][k] for v in seeds.values()]
            s = [v["student"][k] for v in seeds.values()]
            out.setdefault("mean_gain", {})[k] = round(statistics.mean(t) - statistics.mean(s), 2)
            out.setdefault("noise", {})[k] = round(math.hypot(_std(t), _std(s)), 2)
            out.setdefault("gain_std", {})[k] = round(_std([v["gain"][k] for v in seeds.values()]), 2)
    return out


def plot(cells: list, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(METRICS), figsize=(11, 4.2))
    for ax, (k, name) in zip(axes, METRICS):
        for c in cells:
            if not c["seeds"]:
                continue
            x = c["pair_seconds"]
            ax.scatter([x] * len(c["seeds"]), [v["gain"][k] for v in c["seeds"].values()], color="0.6", s=14)
            ax.errorbar(x, c["mean_gain"][k], yerr=c["noise"][k], fmt="o", capsize=4, color="C0")
            ax.annotate(c["label"], (x, c["mean_gain"][k]), textcoords="offset points", xytext=(6, 4), fontsize=8)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xlabel("teacher + student training time per seed (s, one CPU thread)")
        ax.set_ylabel(f"student's gain over its teacher, test {name} (mm)")
        ax.set_title(f"{name}: mean of the seeds (bar: seeds' noise), each seed (grey)", fontsize=9)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cell", nargs=3, action="append", required=True, metavar=("LABEL", "TEACHER_EPOCHS", "OVERRIDES"),
                   help="a label, the teacher's epochs and the student's config overrides (JSON)")
    p.add_argument("--data", default=BANDAI)
    p.add_argument("--profile", default="tutorial")
    p.add_argument("--students", default="bench/results/long/student_checks.jsonl")
    p.add_argument("--teachers", default="bench/results/long/teacher_init.jsonl")
    p.add_argument("--out", help="JSON file for the summary")
    p.add_argument("--plot", help="PNG file for the figure")
    a = p.parse_args(argv)
    students, teachers = _lines(a.students), _lines(a.teachers)
    cells = []
    for label, epochs, text in a.cell:
        overrides = json.loads(text)
        rows = cell_rows(students, teacher_lines(teachers, a.data, a.profile, int(epochs)), a.profile, overrides)
        cells.append(summarise(label, int(epochs), overrides, rows))
        c = cells[-1]
        per_seed = "; ".join(f"seed {s}: {v['teacher']['mpjpe_scaled_flip']} / {v['teacher']['p_mpjpe_flip']} -> "
                             f"{v['student']['mpjpe_scaled_flip']} / {v['student']['p_mpjpe_flip']}"
                             for s, v in c["seeds"].items())
        print(f"{label}: {per_seed or 'no runs'}" + (f"; mean gain {c['mean_gain']} noise {c['noise']} "
                                                    f"per-seed gain std {c['gain_std']}, "
                                                    f"{c['pair_seconds']} s per pair" if c["seeds"] else ""))
    summary = {"data": a.data, "profile": a.profile, "cells": cells}
    if a.out:
        atomic_write_json(Path(a.out), summary)
    if a.plot:
        plot(cells, Path(a.plot))
    return summary


if __name__ == "__main__":
    main()

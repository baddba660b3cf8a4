"""The student's gain over its teacher against student steps, from bench/teacher_long.py runs with --student-steps:
the student's test MPJPE and P-MPJPE (with the mirror, scale-calibrated, mm) at every check, the kept teacher's as a
dashed line of the same colour; prints the gain (teacher - student) at each check and saves the figure.

    python bench/student_gain_plot.py bench/results/long/student_long_bandai_sixd_seed{0,1}.json \\
        --plot bench/results/long/student_long_bandai_sixd.png
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

METRICS = (("mpjpe", "MPJPE"), ("p_mpjpe", "P-MPJPE"))


def student_gains(run: dict) -> list:
    """[(step, student test {metric: mm}, teacher - student {metric: mm})] of a run's student checks."""
    teacher = run["teacher_kept"]["test"]
    return [(r["step"], {k: r["test"][k] for k, _ in METRICS}, {k: teacher[k] - r["test"][k] for k, _ in METRICS})
            for r in run["records"] if r["stage"] == "student"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="JSON files of bench/teacher_long.py with student records")
    p.add_argument("--plot", help="PNG to write")
    a = p.parse_args(argv)
    runs = {Path(f).stem: json.loads(Path(f).read_text()) for f in a.runs}
    for name, run in runs.items():
        gains = student_gains(run)
        if not gains:
            raise SystemExit(f"{name}: no student records; run bench/teacher_long.py with --student-steps")
        teacher = run["teacher_kept"]["test"]
        print(f"{name}: teacher (step {run['teacher_kept_step']}) test "
              f"{teacher['mpjpe']:.1f} / {teacher['p_mpjpe']:.1f}")
        for step, score, gain in gains:
            print(f"  student step {step:>5}: {score['mpjpe']:5.1f} / {score['p_mpjpe']:5.1f}   gain "
                  f"{gain['mpjpe']:+5.1f} / {gain['p_mpjpe']:+5.1f}")
    if a.plot:
        from itespy import viz
        viz.plot_student_gain(runs, path=a.plot, title="student against its teacher (bench/teacher_long.py "
                                                         "--student-steps)")
        print(f"wrote {a.plot}")

if __name__ == "__main__":
    main()

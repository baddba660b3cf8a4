"""Print the checks of bench/teacher_long.py runs as one line each (JSON or log files); ``--plot PNG`` also
draws the JSON runs with itespy.viz.plot_long_run (validation clips).

    python bench/long_summary.py bench/results/long/bandai_baseline.json --plot bench/results/long/bandai_baseline.png
"""
from __future__ import annotations

import json
import sys


def records(path):
    if path.endswith(".json"):
        return json.load(open(path))["records"]
    return [json.loads(line) for line in open(path) if line.startswith('{"stage"') and '"val"' in line]


def line(r) -> str:
    v, b, t = r["val"], r.get("val_bnreal", r["val"]), r["test"]
    s = (f"{r['stage'][0]} {r['step']:>6} {r['seconds']:>6.0f}s | val {v['mpjpe']:5.1f}/{v['p_mpjpe']:5.1f} "
         f"nomir {v['mpjpe_nomirror']:5.1f}/{v['p_mpjpe_nomirror']:5.1f} mir {v['mirror']:.2f} dr {v['depth_ratio']:.2f}"
         f" | bnreal {b['mpjpe']:5.1f}/{b['p_mpjpe']:5.1f} nomir {b['mpjpe_nomirror']:5.1f} | test {t['mpjpe']:5.1f}/"
         f"{t['p_mpjpe']:5.1f} nomir {t['mpjpe_nomirror']:5.1f}")
    losses = " ".join(f"{k[5:]} {v:.4f}" for k, v in r.items() if k.startswith("loss_") and k != "loss_total")
    extra = f" sp {r['canonical_spread']:.3f} sc {r['canonical_scale']:.2f}" if "canonical_spread" in r else ""
    if "camera_angle_deg" in r:  # the axis-angle head's output length (degrees): past 180 it wraps round
        extra += f" ang {r['camera_angle_deg']:.0f}"
    if "rotation_angle_deg" in r:  # R̂'s own angle, and the camera head's output length (any head)
        extra += f" R {r['rotation_angle_deg']:.0f} |head| {r['camera_output_norm']:.1f}"
    return f"{s} | {losses}{extra}"


if __name__ == "__main__":
    args = sys.argv[1:]
    plot = None
    if "--plot" in args:
        i = args.index("--plot")
        plot, args = args[i + 1], args[:i] + args[i + 2:]
    for path in args:
        print(path)
        for r in records(path):
            print(line(r))
    if plot:
        from pathlib import Path

        from itespy.viz import plot_long_run
        runs = {Path(p).stem: json.load(open(p)) for p in args if p.endswith(".json")}
        plot_long_run(runs, path=plot, title="teacher on the validation clips (bench/teacher_long.py)")
        print(f"wrote {plot}")

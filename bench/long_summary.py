"""Print the checks of bench/teacher_long.py runs as one line each (JSON or log files)."""
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
    extra = (f" sp {r['canonical_spread']:.3f} sc {r['canonical_scale']:.2f} ang {r['camera_angle_deg']:.0f}"
             if "canonical_spread" in r else "")
    return f"{s} | {losses}{extra}"


if __name__ == "__main__":
    for path in sys.argv[1:]:
        print(path)
        for r in records(path):
            print(line(r))

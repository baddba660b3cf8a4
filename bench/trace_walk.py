"""Which itespy files one `python -m itespy train` walks through (issue "One owner for a run").

Runs the command line in-process on a tiny synthetic configuration with a profile hook that records, for every
Python call into an itespy function (module bodies run by imports excluded), the file it lives in and the
itespy file that called it (through torch/numpy frames: a loss called by a model's forward counts as the
model's call). Prints (and with --out saves as JSON) the files entered, the caller -> callee file pairs, and
the pairs that call each other both ways: the back-and-forth that a one-way walk does not have.

    python bench/trace_walk.py --out bench/results/trace_walk.json
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# tiny: the walk, not the training, is measured
TINY = ["--epochs", "1", "--max-train", "256", "--max-test", "64", "--batch-size", "64", "--quiet"]


def trace(argv) -> dict:
    from itespy.cli import main
    package = str(ROOT / "itespy")
    order, edges = [], set()

    def rel(path):
        return str(Path(path).relative_to(ROOT)) if path.startswith(package) else None

    def hook(frame, event, arg):
        if event != "call" or frame.f_code.co_name == "<module>":  # imports are not the walk
            return
        callee = rel(frame.f_code.co_filename)
        if callee is None:
            return
        if callee not in order:
            order.append(callee)
        caller = frame.f_back
        while caller is not None and rel(caller.f_code.co_filename) is None:  # through torch / numpy frames
            caller = caller.f_back
        source = rel(caller.f_code.co_filename) if caller is not None else None
        if source is not None and source != callee:
            edges.add((source, callee))

    sys.setprofile(hook)
    try:
        main(argv)
    finally:
        sys.setprofile(None)
    both_ways = sorted({tuple(sorted(e)) for e in edges if (e[1], e[0]) in edges})
    return {"files": order, "calls_between_files": sorted(edges), "both_ways": both_ways}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", help="JSON file for the result")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["train", "--profile", "smoke", "--data", "synthetic", "--device", "cpu", "--out", f"{tmp}/run",
               *TINY]
        result = {"command": "itespy " + " ".join(cmd), **trace(cmd)}
    print(f"{len(result['files'])} files entered; {len(result['calls_between_files'])} caller -> callee file pairs; "
          f"{len(result['both_ways'])} pairs call each other (back and forth):")
    print("\n".join(f"  {a} <-> {b}" for a, b in result["both_ways"]))
    if a.out:
        from itespy.io import atomic_write_json
        atomic_write_json(a.out, result)


if __name__ == "__main__":
    main()

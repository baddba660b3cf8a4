"""``python -m itespy reproduce``: arguments and entry point."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .. import experiments as ex
from ..config import PROFILES, VARIANTS, Config
from .runner import publish, reproduce

def parse_set(items) -> dict:
    out = {}
    fields = {f for f in Config().to_dict()}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in fields:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE with KEY a config field "
                             f"({', '.join(sorted(fields))})")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def parse_slurm_set(items) -> dict:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--slurm-set {item!r}: expected KEY=VALUE, an sbatch option such as account=mylab")
        out[key.strip().replace("-", "_")] = value
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=PROFILES, default="smoke",
                        help="smoke (CI, tiny data) | tutorial (2-core CPU) | paper (the paper's epochs, a GPU)")
    parser.add_argument("--only", help=f"comma-separated tables, e.g. T3,F6 (default: all of {','.join(ex.TABLE_IDS)})")
    parser.add_argument("--data", default="synthetic", help="DATA spec (synthetic | mocap:PATH.npz | bvh:DIR | "
                        "h36m:DIR | h36m-cpn:DIR); the IMG column of Table 1 needs h36m")
    parser.add_argument("--test-data", help="3dhp:DIR for Table 2 (default: the test split of --data, said so)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--out", help="output directory (default runs/reproduce-PROFILE)")
    parser.add_argument("--cache", help="trained-model cache directory (default OUT/cache); may be shared by runs")
    parser.add_argument("--force", action="store_true", help="retrain and re-evaluate every selected row")
    parser.add_argument("--seeds", type=int, help="seeds for every row of a close claim (default: the profile's, "
                        f"{ex.PROFILE_SEEDS})")
    parser.add_argument("--variant", choices=VARIANTS, default="paper")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", dest="set_",
                        help="override a config field for every row (repeatable), e.g. --set teacher_epochs=1")
    parser.add_argument("--quick", action="store_true",
                        help="the notebooks' tiny setting (tiny networks, 1 epoch): checks the pipeline in minutes")
    parser.add_argument("--timeout", type=int, help="per-cell timeout in seconds for the notebooks")
    parser.add_argument("--publish", metavar="DIR", help="afterwards copy REPORT.md, results.json and figures/*.png "
                        "to DIR (e.g. results/tutorial)")
    par = parser.add_argument_group("parallel and cluster runs (docs/cluster.md)")
    par.add_argument("--jobs", type=int, default=1, metavar="N",
                     help="rows in parallel: N worker processes (local; spread over the GPUs when there are any), or "
                          "at most N Slurm jobs at once (slurm; default there: no limit)")
    par.add_argument("--executor", choices=("local", "slurm", "submitit-local"), default="local",
                     help="local: this machine; slurm: one Slurm job per row via submitit; submitit-local: the "
                          "Slurm path without a cluster (submitit's local executor)")
    par.add_argument("--threads", type=int, help="torch threads of each process (notebook kernel or worker) outside "
                     "training; default: all cores (serial) or cores / N (--jobs N). A training always runs with its "
                     "configuration's threads (Config.threads, --set threads=N), so the numbers do not depend on this")
    par.add_argument("--retries", type=int, help="resubmit a failed job this many times (default 2)")
    par.add_argument("--partition", help="Slurm partition")
    par.add_argument("--gpus", type=int, help="GPUs per Slurm job (default: 1 when the partition's nodes have GPUs, "
                     "as sinfo lists them, else 0; 0 with --device cpu, 1 with --device cuda)")
    par.add_argument("--time", type=int, metavar="MIN", help="time limit per Slurm job in minutes "
                     "(default per profile: smoke 30, tutorial 120, paper 1440)")
    par.add_argument("--mem", type=float, metavar="GB", help="memory per Slurm job (default per profile: 8/16/64)")
    par.add_argument("--cpus", type=int, help="CPUs per Slurm job (default per profile: 2/4/8)")
    par.add_argument("--slurm-set", action="append", metavar="KEY=VALUE", dest="slurm_set",
                     help="any other sbatch option, e.g. --slurm-set account=mylab --slurm-set qos=high (repeatable)")
    par.add_argument("--plan", action="store_true", help="print the trainings the run still needs (what --jobs "
                     "or --executor would start, in priority order, with what each waits for) and, with --executor "
                     "slurm, what each job asks for; then exit")
    par.add_argument("--poll", type=float, help="seconds between job-state checks (default: local 0.5, slurm 30)")


def run_from_args(args) -> int:
    quick = ex.QUICK_OVERRIDES if getattr(args, "quick", False) else {}
    overrides = {**quick, **parse_set(getattr(args, "set_", None))}
    slurm = {"partition": getattr(args, "partition", None), "gpus": getattr(args, "gpus", None),
             "time_min": getattr(args, "time", None), "mem_gb": getattr(args, "mem", None),
             "cpus": getattr(args, "cpus", None), "slurm_extra": parse_slurm_set(getattr(args, "slurm_set", None))}
    if getattr(args, "plan", False):
        from . import scheduler
        out = Path(args.out or f"runs/reproduce-{args.profile}")
        settings = scheduler.row_settings(args.profile, args.data, args.device, out, args.cache, overrides,
                                          args.variant, args.test_data)
        tables = ex.parse_only(args.only)
        print(scheduler.plan_text(scheduler.plan([(t, r, 0) for t in tables for r in ex.get_table(t).row_ids],
                                                 settings)))
        if getattr(args, "executor", "local") == "slurm":
            from .slurm import request
            print(f"slurm: {request(args.profile, args.device, 'slurm', **slurm)[1]}")
        return 0
    result = reproduce(profile=args.profile, only=args.only, data=args.data, device=args.device, out=args.out,
                       force=args.force, seeds=args.seeds, overrides=overrides, variant=args.variant,
                       test_data=args.test_data, cache_dir=args.cache, timeout=args.timeout,
                       jobs=getattr(args, "jobs", 1), executor=getattr(args, "executor", "local"),
                       retries=getattr(args, "retries", None), slurm=slurm, poll=getattr(args, "poll", None),
                       threads=getattr(args, "threads", None))
    for c in result["claims"]:
        print(ex.claim_result_text(c).splitlines()[0])
    if getattr(args, "publish", None):
        print(f"published to {publish(result['out'], args.publish)}")
    return 1 if result["failed"] else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m itespy reproduce", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_from_args(args)
    except (ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

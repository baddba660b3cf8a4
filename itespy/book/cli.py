"""``python -m itespy book``: arguments and entry point."""
from __future__ import annotations

import argparse
import shlex
import sys

from ..config import PROFILES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=PROFILES, default="smoke",
                        help="smoke (minutes; each chapter's own small sizes unless --no-quick) | tutorial (the "
                             "profile's sizes everywhere, as the published book) | paper (a GPU)")
    parser.add_argument("--out", help="the site's folder (default WORK/site); open OUT/index.html")
    parser.add_argument("--data", default="synthetic", help="DATA spec for every chapter that takes one "
                        "(synthetic | mocap:PATH.npz | bvh:DIR | h36m:DIR ...)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--work", help="executed notebooks, trained runs and table rows (default runs/book-PROFILE); "
                        "a second build reuses them")
    parser.add_argument("--cache", help="trained-model cache of the table chapters (default WORK/tables/cache); "
                        "e.g. a reproduce run's OUT/cache to reuse its trainings")
    parser.add_argument("--quick", action=argparse.BooleanOptionalAction, default=None,
                        help="each notebook's own small sizes, as CI runs them (default: on for smoke, off otherwise)")
    parser.add_argument("--only", help="comma-separated chapters, e.g. 00,03 (default: all ten)")
    parser.add_argument("--force", action="store_true", help="execute every chapter again")
    parser.add_argument("--timeout", type=int, help="per-cell timeout in seconds")
    parser.add_argument("--threads", type=int, help="torch threads of each notebook's kernel")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="compute the table rows first in N worker processes (as reproduce --jobs N)")


def run_from_args(args) -> int:
    from .build import build_book
    command = "python -m itespy " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if len(sys.argv) > 1 else None
    manifest = build_book(profile=args.profile, out=args.out, data=args.data, device=args.device, work=args.work,
                          cache=args.cache, quick=args.quick, only=args.only, force=args.force, timeout=args.timeout,
                          threads=args.threads, jobs=args.jobs, command=command)
    return 1 if manifest["failed"] else 0

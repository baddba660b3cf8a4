"""Command line: ``python -m itespy train | evaluate | data | reproduce | predict | book | info``.

Thin on purpose: every command parses its flags and calls one library function. Errors that come from
bad input are printed as one paragraph (no traceback) and exit with status 2; set ITESPY_DEBUG=1 to see
the traceback instead."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .config import PROFILES, STAGES, VARIANTS, make_config, one_rotation_warning

EXIT_BAD_INPUT = 2


def _train(args):
    from .evaluate import summary_line
    from .run import run_experiment
    overrides = dict(data=args.data, seed=args.seed, device=args.device, teacher_epochs=args.epochs,
                     student_epochs=args.student_epochs if args.student_epochs is not None else args.epochs,
                     student_lr_decay_every=args.student_lr_decay_every, batch_size=args.batch_size,
                     max_train=args.max_train, max_test=args.max_test, num_atoms=args.num_atoms)
    cfg = make_config(args.profile, args.variant, **overrides)
    warning = one_rotation_warning(cfg, args.stage)
    if warning:
        print(warning, file=sys.stderr)
    result = run_experiment(cfg, args.out, stage=args.stage, resume=args.resume, overwrite=args.overwrite,
                            progress=not args.quiet, teacher_dir=args.teacher)
    for model in ("teacher", "student"):
        if model in result:
            print(f"{model}: {summary_line(result[model])} on {result[model]['frames']} test frames of {cfg.data}")
    print(f"outputs in {args.out}")


def _evaluate(args):
    from .data import load_splits, load_test_set, parse_spec
    from .evaluate import DEFAULT_PROTOCOLS, evaluate_model, summary_line
    from .metrics import PROTOCOLS
    from .devices import resolve_device
    from .pretrained import resolve
    from .runfolder import RunFolder
    run_dir = resolve(args.checkpoint)
    protocols = tuple(args.protocol) if args.protocol else DEFAULT_PROTOCOLS
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown:
        raise ValueError(f"--protocol {', '.join(unknown)}: expected names from {PROTOCOLS}")
    if args.max_test is not None and args.max_test < 1:
        raise ValueError(f"--max-test {args.max_test}: expected a positive number of test poses")
    if args.data is not None:
        parse_spec(args.data)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"--checkpoint {run_dir}: expected a run directory written by `itespy train`.")
    folder = RunFolder(run_dir)
    device = resolve_device(args.device)
    models, cfg = folder.load_models(device)
    scale = folder.training_scale()  # read (and checked) whatever the test data: a corrupt run is reported
    data = args.data or cfg.data
    if data.startswith("3dhp:"):
        test = load_test_set(data, scale=scale, seed=cfg.seed, max_test=args.max_test)
    else:
        test = load_splits(data, seed=cfg.seed, max_train=cfg.max_train,
                           max_test=args.max_test if args.max_test is not None else cfg.max_test)["test"]
    result = {"checkpoint": str(run_dir), "data": data, "frames": len(test), "protocols": list(protocols)}
    for stage, model in models.items():
        result[stage] = evaluate_model(model, test, device, protocols, teacher_output=cfg.teacher_output)
    if args.json:
        print(json.dumps({k: _means(v) if k in models else v for k, v in result.items()}, sort_keys=True))
    else:
        for stage in models:
            metrics = result[stage]
            line = summary_line(metrics) if "p_mpjpe_flip" in metrics and "mpjpe_scaled_flip" in metrics else \
                ", ".join(f"{p} {metrics[p]['mean']:.2f}" for p in protocols)
            print(f"{stage}: {line} on {len(test)} test frames of {data}")


def _means(metrics: dict) -> dict:
    """Compact JSON: {protocol: per-frame mean} plus the frame count."""
    return {k: (v["mean"] if isinstance(v, dict) and "mean" in v else v) for k, v in metrics.items()
            if k != "per_joint_mpjpe_scaled_flip"}


def _data(args):
    from .data.summary import format_summary, save_sample_figure, summarise
    if args.max_frames is not None and args.max_frames < 1:
        raise ValueError(f"--max-frames {args.max_frames}: expected a positive number of frames per split")
    info = summarise(args.spec, seed=args.seed, max_frames=args.max_frames)
    print(format_summary(info))
    if args.figure:
        from .data import load_splits
        split = load_splits(args.spec, seed=args.seed, max_train=args.max_frames, max_test=args.max_frames)["train"]
        print(f"figure: {save_sample_figure(split, args.figure)}")


def _pretrained(args):
    from . import pretrained
    if args.action == "list":
        for name in pretrained.available():
            record = json.loads((pretrained.PRETRAINED_ROOT / name / "metrics.json").read_text())
            scores = ", ".join(f"{stage} {m['mpjpe_scaled_flip']:.1f} / {m['p_mpjpe_flip']:.1f} mm"
                               for stage, m in record["metrics"].items())
            print(f"pretrained:{name}  ({record['data']}, {record['test_poses']} test poses: {scores})")
        return None
    if args.action == "export":
        if not (args.run and args.name and args.readme):
            raise ValueError("pretrained export: expected --run RUN_DIR --name NAME --readme FILE.md")
        record = pretrained.export(args.run, args.name, Path(args.readme).read_text())
        print(json.dumps(record, indent=1))
        return None
    worst = 0.0
    for name in [args.name] if args.name else pretrained.available():
        result = pretrained.check(name)
        for stage, recorded in result["recorded"].items():
            measured = result["measured"][stage]
            diff = max(abs(measured[k] - recorded[k]) for k in pretrained.PROTOCOLS)
            worst = max(worst, diff)
            print(f"pretrained:{name} {stage}: recorded {recorded['mpjpe_scaled_flip']:.2f} / "
                  f"{recorded['p_mpjpe_flip']:.2f}, measured {measured['mpjpe_scaled_flip']:.2f} / "
                  f"{measured['p_mpjpe_flip']:.2f} mm (largest difference {diff:.3f} mm)")
    return 1 if worst > pretrained.CHECK_TOLERANCE_MM else None


def _info(args):
    import platform

    import numpy as np
    import torch

    from . import __version__
    from .models import build_student, build_teacher, count_parameters
    from .devices import resolve_device
    cfg = make_config("paper", args.variant)
    lines = {"itespy": __version__, "python": platform.python_version(), "torch": torch.__version__,
             "numpy": np.__version__, "device (auto)": str(resolve_device("auto")),
             "cuda available": torch.cuda.is_available(),
             f"teacher parameters ({args.variant})": count_parameters(build_teacher(cfg)),
             f"student parameters ({args.variant})": count_parameters(build_student(cfg))}
    for k, v in lines.items():
        print(f"{k}: {v}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m itespy", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train the teacher and/or the student, then evaluate")
    p.add_argument("--data", default="synthetic", help="DATA spec (synthetic | mocap:PATH.npz | bvh:DIR | h36m:DIR ...)")
    p.add_argument("--stage", choices=STAGES, default="both")
    p.add_argument("--profile", choices=PROFILES, default="smoke")
    p.add_argument("--variant", choices=VARIANTS, default="paper")
    p.add_argument("--out", required=True, help="run directory (never overwritten without --overwrite)")
    p.add_argument("--epochs", type=int, help="teacher epochs (and student epochs unless --student-epochs)")
    p.add_argument("--student-epochs", type=int)
    p.add_argument("--student-lr-decay-every", type=int,
                   help="halve the student's rate every N epochs (0: never; default: the profile's)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--max-train", type=int)
    p.add_argument("--max-test", type=int)
    p.add_argument("--num-atoms", type=int, help="pose dictionary size K")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--teacher", help="run directory whose teacher.pt to reuse (with --stage student)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_train)

    p = sub.add_parser("evaluate", help="evaluate a trained run directory")
    p.add_argument("--checkpoint", required=True, help="run directory with teacher.pt / student.pt, or "
                        "pretrained[:NAME] (a model shipped with the kit)")
    p.add_argument("--data", help="DATA spec (default: the one it was trained on)")
    p.add_argument("--protocol", action="append", help="metric protocol (repeatable); see itespy.metrics")
    p.add_argument("--max-test", type=int)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("data", help="summarise a DATA source (and save sample skeletons)")
    p.add_argument("spec", help="DATA spec")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-frames", type=int)
    p.add_argument("--figure", help="save a PNG of sample skeletons here")
    p.set_defaults(func=_data)

    p = sub.add_parser("pretrained", help="the trained models that ship with the kit: list, export, check")
    p.add_argument("action", choices=("list", "export", "check"))
    p.add_argument("--run", help="export: a finished `itespy train --stage both` run directory")
    p.add_argument("--name", help="export / check: the model's name (check: default every shipped model)")
    p.add_argument("--readme", help="export: a Markdown file describing the model (the command that made it)")
    p.set_defaults(func=_pretrained)

    p = sub.add_parser("info", help="versions, device, parameter counts")
    p.add_argument("--variant", choices=VARIANTS, default="paper")
    p.set_defaults(func=_info)

    for name, module, helptext in (("reproduce", "reproduce", "re-run the paper's tables and write REPORT.md"),
                                   ("predict", "predict", "lift your own 2D keypoints to 3D"),
                                   ("book", "book", "execute the notebooks and render them as an offline book")):
        try:
            mod = __import__(f"itespy.{module}", fromlist=["add_arguments"])
        except ImportError:
            continue
        p = sub.add_parser(name, help=helptext)
        mod.add_arguments(p)
        p.set_defaults(func=mod.run_from_args)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = args.func(args)  # reproduce returns 1 when a notebook failed; other commands return None
    except (ValueError, OSError, RuntimeError, KeyError, ArithmeticError) as exc:
        if os.environ.get("ITESPY_DEBUG"):
            raise
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return int(status or 0)

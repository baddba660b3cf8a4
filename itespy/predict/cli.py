"""The ``python -m itespy predict`` command: flags, and writing the requested outputs atomically."""
from __future__ import annotations

import math
from pathlib import Path

from .core import predict_file, summary_lines
from .inputs import DEFAULT_MAX_GAP, DEFAULT_MAX_MISSING, DEFAULT_MIN_CONFIDENCE, FORMATS, NORMALISE_MODES


# ---------------------------------------------------------------------------------------------- files and CLI
def run(checkpoint, input, fmt: str, *, out=None, html=None, png=None, png_step: int = 1, **kwargs) -> tuple:
    """Predict from a file and write the requested outputs; returns (Prediction, [written paths]).

    Every output is rendered in memory before the first byte is written, and each file is written
    atomically: on any error nothing new is left on disk."""
    from ..io import atomic_write_bytes
    input_path = Path(input)
    targets = {"--out": (out, (".npz",)), "--html": (html, (".html", ".htm"))}
    for flag, (value, suffixes) in targets.items():
        if value is None:
            continue
        if Path(value).suffix.lower() not in suffixes:
            raise ValueError(f"{flag} {value}: expected a file name ending in {' or '.join(suffixes)}.")
        if input_path.exists() and Path(value).resolve() == input_path.resolve():
            raise ValueError(f"{flag} {value}: this is the input file; choose another name.")
    if png is not None and Path(png).exists() and not Path(png).is_dir():
        raise ValueError(f"--png {png}: exists and is not a folder.")
    pred = predict_file(checkpoint, input, fmt, **kwargs)
    payload = {}
    if out is not None:
        payload[Path(out)] = pred.npz_bytes()
    if html is not None:
        payload[Path(html)] = pred.viewer_html().encode("utf-8")
    if png is not None:
        for index, data in pred.png_frames(png_step):
            payload[Path(png) / f"frame_{index:05d}.png"] = data
    written = [atomic_write_bytes(path, data) for path, data in payload.items()]
    return pred, written


def add_arguments(parser) -> None:
    """The flags of ``python -m itespy predict``."""
    parser.add_argument("--checkpoint", required=True, help="run directory with teacher.pt / student.pt, or "
                        "pretrained[:NAME] (a model shipped with the kit)")
    parser.add_argument("--input", required=True, help=".npz (keypoints (N,17,2|3)) or .json (COCO results or "
                                                        "nested list)")
    parser.add_argument("--format", required=True, choices=FORMATS, dest="fmt",
                        help="joint order of the input: h36m17 (the kit's) or coco17 (most 2D detectors)")
    parser.add_argument("--image-size", type=int, nargs=2, metavar=("W", "H"),
                        help="image size in pixels (frames the 2D panel; reports joints outside the image)")
    parser.add_argument("--focal", type=float, help="focal length in pixels; with it the run's own 2D "
                                                    "normalisation is used (see --normalise)")
    parser.add_argument("--normalise", choices=NORMALISE_MODES, default="auto",
                        help="auto (default): 'checkpoint' if --focal is given and the run recorded its scale, "
                             "else 'sequence' (mean pelvis-to-head 2D length -> 1/5 over the sequence)")
    parser.add_argument("--min-confidence", type=float, default=DEFAULT_MIN_CONFIDENCE,
                        help=f"joints below this confidence are missing (default {DEFAULT_MIN_CONFIDENCE})")
    parser.add_argument("--max-gap", type=int, default=DEFAULT_MAX_GAP,
                        help=f"fill a missing joint from at most this many frames back (default {DEFAULT_MAX_GAP})")
    parser.add_argument("--max-missing", type=int, default=DEFAULT_MAX_MISSING,
                        help=f"skip frames with more missing joints (default {DEFAULT_MAX_MISSING})")
    parser.add_argument("--out", help="write predictions to this .npz")
    parser.add_argument("--html", help="write a self-contained 3D viewer (works offline) to this .html")
    parser.add_argument("--png", help="write one PNG per frame into this folder")
    parser.add_argument("--png-step", type=int, default=1, help="with --png: every k-th frame (default 1)")
    parser.add_argument("--device", default="cpu", help="cpu (default) | auto | cuda | cuda:N")


def run_from_args(args) -> int:
    """Entry point for the CLI (``args`` from a parser set up by :func:`add_arguments`)."""
    if args.focal is not None and not (math.isfinite(args.focal) and args.focal > 0):
        raise ValueError(f"--focal {args.focal}: expected a positive focal length in pixels.")
    if args.image_size is not None and min(args.image_size) <= 0:
        raise ValueError(f"--image-size {args.image_size}: expected two positive integers W H.")
    pred, written = run(args.checkpoint, args.input, args.fmt, out=args.out, html=args.html, png=args.png,
                        png_step=args.png_step, image_size=args.image_size, focal=args.focal,
                        normalise=args.normalise, min_confidence=args.min_confidence, max_gap=args.max_gap,
                        max_missing=args.max_missing, device=args.device)
    for line in summary_lines(pred):
        print(line)
    if written:
        pngs = [p for p in written if p.suffix == ".png"]
        for path in written:
            if path.suffix != ".png":
                print(f"wrote {path}")
        if pngs:
            print(f"wrote {len(pngs)} PNGs into {pngs[0].parent}")
    else:
        print("nothing written (pass --out, --html or --png)")
    return 0

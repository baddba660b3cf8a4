"""Build, execute and strip the teaching notebooks (notebooks/*.ipynb are the source of truth).

Commit policy (checked by tests/test_notebook_policy.py): a committed notebook keeps outputs only in
cells whose source starts with ``# NBVAL_CHECK_OUTPUT`` (plain text only: the outputs nbval compares
under ``--nbval-lax``; such a cell's execution count is its code-cell ordinal, since nbval ignores cells
without one), has no other execution counts, no widget state and no run metadata, has exactly one
cell tagged ``parameters``, uses the ``python3`` kernel and stays under 200 KB.

Usage (from the repository root, with the project venv):

    python tools/notebooks.py refresh notebooks/01_projection_ambiguity.ipynb [...]
        execute top to bottom (nbclient, cwd notebooks/), then write back stripped (atomic)
    python tools/notebooks.py strip notebooks/*.ipynb [--check]
        strip without executing; --check only reports (exit 1) notebooks that are not clean
    python tools/notebooks.py new notebooks/03_teacher.ipynb --title "03 · The teacher network"
        start a notebook with the standard title, parameters and set-up cells
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat

CHECK_MARKER = "# NBVAL_CHECK_OUTPUT"
SOLUTION_TAG = "solution"  # an exercise's worked solution: source hidden in JupyterLab and folded in the book
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
MAX_BYTES = 200 * 1024
PLAIN_MIME = "text/plain"
_RUN_METADATA = ("execution", "papermill", "ExecuteTime", "collapsed", "scrolled", "jupyter")

SETUP_SOURCE = """import sys
from pathlib import Path

sys.path.insert(0, str(Path.cwd().parent))  # the repository root, so `import itespy` works from notebooks/

import numpy as np
import matplotlib.pyplot as plt
from itespy import geometry, skeleton, viz

figures = Path(figures_dir)"""


def is_check_cell(cell) -> bool:
    return cell.cell_type == "code" and cell.source.lstrip().startswith(CHECK_MARKER)


def _plain_output(out):
    """Keep a check cell's output only as plain text (no images, HTML, widgets or counts)."""
    if out.output_type == "stream":
        return nbformat.v4.new_output("stream", name=out.name, text=out.text)
    if out.output_type in ("execute_result", "display_data") and PLAIN_MIME in out.get("data", {}):
        return nbformat.v4.new_output("display_data", data={PLAIN_MIME: out.data[PLAIN_MIME]})
    if out.output_type == "error":
        return out
    return None


def _coalesce(outputs):
    """Merge consecutive stream outputs of one stream (how they are split depends on flush timing)."""
    merged = []
    for out in outputs:
        if merged and out.output_type == "stream" and merged[-1].output_type == "stream" \
                and merged[-1].name == out.name:
            merged[-1].text += out.text
        else:
            merged.append(out)
    return merged


def strip(nb):
    """A copy of ``nb`` that follows the commit policy (outputs only in check cells, as plain text)."""
    nb = copy.deepcopy(nb)
    ordinal = 0
    for cell in nb.cells:
        for key in _RUN_METADATA:
            cell.metadata.pop(key, None)
        if SOLUTION_TAG in cell.metadata.get("tags", []):  # a solution stays folded until the learner opens it
            cell.metadata["jupyter"] = {"source_hidden": True}
        if cell.cell_type != "code":
            continue
        ordinal += 1
        cell.execution_count = None
        if is_check_cell(cell):
            cell.outputs = _coalesce([o for o in map(_plain_output, cell.outputs) if o is not None])
            # nbval skips (and, with outputs, rejects) cells without a count: use the code-cell ordinal
            cell.execution_count = ordinal if cell.outputs else None
        else:
            cell.outputs = []
    meta = nb.metadata
    for key in list(meta):
        if key not in ("kernelspec", "language_info"):
            del meta[key]
    meta["kernelspec"] = dict(KERNELSPEC)
    meta["language_info"] = {"name": "python"}
    return nb


def write_atomic(nb, path: Path) -> None:
    text = nbformat.writes(nb) + "\n"
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def execute(path: Path, timeout: int = 600):
    """Run the notebook top to bottom in its own folder (as nbval and papermill do)."""
    from nbclient import NotebookClient
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    client.execute()
    return nb


def refresh(path: Path, timeout: int = 600) -> float:
    start = time.perf_counter()
    nb = execute(path, timeout)
    errors = [c for c in nb.cells if c.cell_type == "code" and any(o.output_type == "error" for o in c.outputs)]
    if errors:
        raise RuntimeError(f"{path}: a cell raised an error; not writing")
    write_atomic(strip(nb), path)
    return time.perf_counter() - start


def new(path: Path, title: str) -> None:
    if path.exists():
        raise SystemExit(f"{path} exists; refusing to overwrite")
    params = "\n".join([
        'profile = "smoke"  # "smoke": seconds on a laptop CPU; "full": the real run',
        'data = "synthetic"  # DATA spec for itespy.data.load_splits',
        'device = "cpu"',
        "seed = 0",
        'out_dir = "runs/notebooks"',
        f'figures_dir = "../figures/{path.stem}"',
    ])
    cell = nbformat.v4.new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {title}"), cell,
                                         nbformat.v4.new_code_cell(SETUP_SOURCE)])
    write_atomic(strip(nb), path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("refresh", help="execute, strip and write back")
    p.add_argument("paths", nargs="+", type=Path)
    p.add_argument("--timeout", type=int, default=600, help="per-cell timeout in seconds")
    p = sub.add_parser("strip", help="strip outputs except check cells")
    p.add_argument("paths", nargs="+", type=Path)
    p.add_argument("--check", action="store_true", help="report unclean notebooks, do not write")
    p = sub.add_parser("new", help="start a notebook")
    p.add_argument("path", type=Path)
    p.add_argument("--title", required=True)
    args = parser.parse_args(argv)

    if args.command == "new":
        new(args.path, args.title)
        return 0
    status = 0
    for path in args.paths:
        if args.command == "refresh":
            print(f"{path}: executed and stripped in {refresh(path, args.timeout):.1f} s")
            continue
        nb = nbformat.read(path, as_version=4)
        clean = strip(nb)
        if clean == nb and path.stat().st_size <= MAX_BYTES:
            continue
        if args.check:
            print(f"{path}: not clean (run: python tools/notebooks.py strip {path})")
            status = 1
        else:
            write_atomic(clean, path)
            print(f"{path}: stripped")
    return status


if __name__ == "__main__":
    sys.exit(main())

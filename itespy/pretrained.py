"""Trained models that ship with the kit: a tutorial-size teacher and student per training set, each in a
run directory under ``itespy/pretrained_models/NAME`` (teacher.pt, student.pt, config.json,
normalisation.json, the training histories, metrics.json with the recorded test metrics, README.md with the
command that made them).

``--checkpoint pretrained`` (or ``pretrained:NAME``) anywhere a run directory is expected resolves here, so
``predict`` and the chapters work on a fresh clone without training. The teacher's weight matrices are stored
as int8 with a float32 scale per row (checkpoints.compress_state_dict) to keep each file under
:data:`MAX_FILE_BYTES`; the recorded metrics are those of the stored (compressed) weights.

    python -m itespy pretrained export --run RUN_DIR --name bandai-tutorial   # after `itespy train`
    python -m itespy pretrained check                                          # re-measure every model
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from .io import atomic_write_json, atomic_write_text, read_json
from .runfolder import CONFIG_FILE, HISTORY_FILE, NORMALISATION_FILE, STAGE_FILES, RunFolder

PRETRAINED_ROOT = Path(__file__).resolve().parent / "pretrained_models"
PREFIX = "pretrained"
DEFAULT_NAME = "bandai-tutorial"  # the one for real keypoints (`predict --checkpoint pretrained`)
MAX_FILE_BYTES = 5 * 1024 * 1024  # issue 27: each shipped file at most 5 MB
PROTOCOLS = ("mpjpe_scaled_flip", "p_mpjpe_flip", "mpjpe_scaled")
RUN_FILES = (CONFIG_FILE, NORMALISATION_FILE)
HISTORY_FILES = tuple(HISTORY_FILE.format(stage=s) for s in STAGE_FILES)  # shipped when present: the chapters plot them
CHECK_TOLERANCE_MM = 0.05  # a re-measured metric may differ from the recorded one by float summation order only


def available() -> list:
    """Names of the shipped models (folders holding a metrics.json)."""
    if not PRETRAINED_ROOT.is_dir():
        return []
    return sorted(p.name for p in PRETRAINED_ROOT.iterdir() if (p / "metrics.json").exists())


def is_pretrained(spec) -> bool:
    return isinstance(spec, str) and (spec == PREFIX or spec.startswith(PREFIX + ":"))


def resolve(spec) -> Path:
    """``'pretrained'`` / ``'pretrained:NAME'`` -> the shipped run directory; anything else -> Path(spec)."""
    if not is_pretrained(spec):
        return Path(spec)
    name = spec.partition(":")[2] or DEFAULT_NAME
    path = PRETRAINED_ROOT / name
    if name not in available():
        raise FileNotFoundError(f"checkpoint {spec!r}: no shipped model named {name!r}; expected one of "
                                f"{available() or '(none shipped in this install)'} as 'pretrained:NAME'.")
    return path


def _measure(run_dir: Path, data: str | None = None) -> dict:
    """Test metrics of the teacher and student stored in ``run_dir``, on its own data and test split."""
    from .data.load import load_splits
    from .evaluate import evaluate_model
    models, cfg = RunFolder(run_dir).load_models()
    test = load_splits(data or cfg.data, seed=cfg.seed, max_train=cfg.max_train, max_test=cfg.max_test,
                       stride=cfg.stride)["test"]
    out = {}
    for stage, model in models.items():
        m = evaluate_model(model, test, teacher_output=cfg.teacher_output)
        out[stage] = {**{k: round(float(m[k]["mean"]), 2) for k in PROTOCOLS},
                      "mirror_rate": round(float(m["mirror_rate"]), 4)}
    return {"data": data or cfg.data, "test_poses": len(test), "metrics": out}


def export(run_dir, name: str, readme: str, data: str | None = None, root: Path = PRETRAINED_ROOT) -> dict:
    """Write the shipped copy of a trained run (teacher.pt + student.pt in ``run_dir``) as ``root/name``.

    The teacher is compressed (int8 rows), the student kept as trained; both are re-measured from the written
    files on the run's test split. Refuses to replace an existing model (delete it first) and any file over
    MAX_FILE_BYTES; writes into a temporary folder and renames it, so a failure leaves nothing behind."""
    from .checkpoints import INT8_ROWS, compress_state_dict, load_checkpoint_file
    from .io import atomic_torch_save
    run_dir, dest = Path(run_dir), Path(root) / name
    if dest.exists():
        raise FileExistsError(f"pretrained model {dest} exists; delete it first to replace it.")
    missing = [f for f in ("teacher.pt", "student.pt", *RUN_FILES) if not (run_dir / f).exists()]
    if missing:
        raise FileNotFoundError(f"run {run_dir}: missing {missing}; expected a finished `itespy train` run.")
    Path(root).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    try:
        for stage in ("teacher", "student"):
            state = load_checkpoint_file(run_dir / f"{stage}.pt")
            if stage == "teacher":
                state = {**state, "model": compress_state_dict(state["model"]), "weights_format": INT8_ROWS}
            atomic_torch_save(tmp / f"{stage}.pt", {k: v for k, v in state.items() if k != "optimizer"})
        for f in RUN_FILES + tuple(h for h in HISTORY_FILES if (run_dir / h).exists()):
            shutil.copy2(run_dir / f, tmp / f)
        trained = read_json(run_dir / "metrics.json") if (run_dir / "metrics.json").exists() else {}
        record = {**_measure(tmp, data), "source_run": str(run_dir),
                  "trained_metrics": {stage: {k: round(float(trained[stage][k]["mean"]), 2) for k in PROTOCOLS}
                                      for stage in ("teacher", "student") if stage in trained}}
        atomic_write_json(tmp / "metrics.json", record)
        atomic_write_text(tmp / "README.md", readme)
        too_big = {p.name: p.stat().st_size for p in tmp.iterdir() if p.stat().st_size > MAX_FILE_BYTES}
        if too_big:
            raise ValueError(f"pretrained model {name}: files over {MAX_FILE_BYTES} bytes: {too_big}")
        tmp.chmod(0o755)  # mkdtemp makes it private
        tmp.rename(dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return record


def check(name: str, data: str | None = None) -> dict:
    """Re-measure a shipped model: {'recorded': ..., 'measured': ...} (metrics in mm)."""
    path = resolve(f"{PREFIX}:{name}")
    recorded = read_json(path / "metrics.json")
    return {"recorded": recorded["metrics"], "measured": _measure(path, data or recorded["data"])["metrics"]}

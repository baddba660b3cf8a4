"""Shared by the bench scripts: one result line (printed, and appended to a JSON-lines file when one is
given), a trained teacher's run read back with its data, and a network's batch-norm statistics recomputed."""
from __future__ import annotations

import json
from pathlib import Path

from itespy.config import STUDENT_FIELDS, make_config
from itespy.data.load import load_splits
from itespy.io import read_json


BANDAI = "mocap:../shared/data/bandai/bandai_h36m17.npz"


def run_arguments(doc: str):
    """The argument parser of a one-training bench script: overrides (JSON), run directory, --data, --profile,
    --append. The caller adds its own options and parses."""
    import argparse
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("overrides", help="config overrides as a JSON object")
    p.add_argument("out", help="run directory (must not exist)")
    p.add_argument("--data", default=BANDAI)
    p.add_argument("--profile", default="tutorial")
    p.add_argument("--append", help="JSON-lines file to append the result to")
    return p


def emit(result: dict, append: str | None = None) -> None:
    print(json.dumps(result), flush=True)
    if append:
        with Path(append).open("a") as f:
            f.write(json.dumps(result) + "\n")


def teacher_run(teacher_dir: Path):
    """(config, splits) of the run in ``teacher_dir``. A teacher's folder holds the student fields' defaults;
    they are taken from its profile instead, so a student trained from it gets the profile's recipe."""
    saved = read_json(Path(teacher_dir) / "config.json")
    cfg = make_config(saved["profile"], saved["variant"]).replace(
        **{k: v for k, v in saved.items() if k not in STUDENT_FIELDS})
    splits = load_splits(cfg.data, seed=cfg.seed, max_train=cfg.max_train, max_test=cfg.max_test, stride=cfg.stride)
    return cfg, splits


def precise_bn(model, inputs, batch_size: int = 128, batches: int = 30, seed: int = 0):
    """A copy of ``model`` (eval mode) whose batch-norm statistics are the plain average over ``batches`` random
    batches of ``inputs`` (a tensor of real training 2D: none of the cycle's passes, which also update them while
    training); the model itself is left as it was. Isolates a train/eval statistics mismatch."""
    import copy

    import torch

    from itespy.train import _batches
    model = copy.deepcopy(model)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average
    model.train()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for i, idx in enumerate(_batches(len(inputs), batch_size, generator)):
            if i >= batches:
                break
            model(inputs[idx])
    return model.eval()

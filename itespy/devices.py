"""Where and how a computation runs: the device (``auto`` -> CUDA when present), the torch CPU threads of a
training, and the environment recorded beside every run."""
from __future__ import annotations

import contextlib
import platform

import numpy as np
import torch

from . import __version__
from .config import Config


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' -> CUDA when present, else CPU. Asking for CUDA on a machine without it is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r}: CUDA was requested but torch.cuda.is_available() is False on this "
                           "machine; use --device cpu or --device auto.")
    if name != "cpu" and not name.startswith("cuda"):
        raise ValueError(f"device: expected auto, cpu, cuda or cuda:N, got {name!r}")
    return torch.device(name)


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """Run the block with ``threads`` torch CPU threads (restored afterwards). A training's thread count is
    part of its configuration (``Config.threads``): another count changes the order of floating-point sums,
    and a short training amplifies that, so it must not depend on the machine or on ``--jobs``."""
    if not threads:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_info(cfg: Config, device) -> dict:
    return {"seed": cfg.seed, "device": str(device), "itespy": __version__, "torch": torch.__version__,
            "numpy": np.__version__, "python": platform.python_version(), "profile": cfg.profile,
            "config": cfg.to_dict()}

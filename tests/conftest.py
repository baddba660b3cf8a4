"""Shared test fixtures: where the read-only shared data lives (if present)."""
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
BANDAI = SHARED / "data" / "bandai"


@pytest.fixture
def bandai_dir():
    if not (BANDAI / "bandai_h36m17.npz").exists():
        pytest.skip(f"Bandai dev data not found at {BANDAI} (read-only shared data is absent on this machine)")
    return BANDAI


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Small models run fastest single-threaded, and shared CI machines are noisy: one torch thread for
    the whole session (session scope, so module-scoped training fixtures get it too)."""
    import torch
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)

"""The data layer's error types and input checks: every loader reports bad or missing input through
:class:`DataError` (the message names the file or key and what was expected) and writes caches
atomically. Imports nothing from the rest of the kit, so every data module may import it."""
from __future__ import annotations

from pathlib import Path

import numpy as np


class DataError(ValueError):
    """Bad or missing input data: the message names the file/key and what was expected."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A file or folder named by a DATA spec does not exist (also a FileNotFoundError)."""


def require_file(path, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise DataNotFoundError(f"{what}: file not found: {p}")
    if not p.is_file():
        raise DataError(f"{what}: expected a file, got a folder: {p}")
    return p


def require_dir(path, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise DataNotFoundError(f"{what}: folder not found: {p}")
    if not p.is_dir():
        raise DataError(f"{what}: expected a folder, got a file: {p}")
    return p


def check_array(arr, where: str, shape: tuple, *, finite: bool = True) -> np.ndarray:
    """Check ``arr`` against ``shape`` (None = any size) and (optionally) finiteness; return it as ndarray."""
    a = np.asarray(arr)
    if a.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, a.shape)):
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        hint = ""
        if len(shape) >= 2 and shape[-2] == 17 and a.ndim >= 2 and a.shape[-2] != 17:
            hint = f" (got {a.shape[-2]} joints; the kit expects the 17 H36M joints)"
        raise DataError(f"{where}: expected shape {want}, got {a.shape}{hint}")
    if finite and np.issubdtype(a.dtype, np.number):
        bad = ~np.isfinite(a)
        if bad.any():
            first = np.argwhere(bad)[0].tolist()
            raise DataError(f"{where}: contains {int(bad.sum())} NaN/inf values (first at index {first}); "
                            f"expected finite numbers")
    return a


def atomic_save_npz(path, **arrays) -> None:
    """np.savez through :func:`itespy.io.atomic_write_bytes` (temp file, fsync, os.replace): no half-written
    caches, as every file the kit writes."""
    import io

    from ..io import atomic_write_bytes
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())



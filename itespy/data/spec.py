"""DATA specs: ``synthetic``, ``mocap:PATH.npz``, ``bvh:DIR``, ``h36m:DIR``, ``h36m-cpn:DIR``, ``3dhp:DIR``
-> (source, path). Parsing only; :mod:`itespy.data.load` dispatches a spec to its loader."""
from __future__ import annotations

import os

from .errors import DataError

KNOWN_SOURCES = ("synthetic", "mocap", "bvh", "h36m", "3dhp")
# 'h36m-cpn' is the h36m source with CPN-detected 2D inputs (Table 1, IMG column).
SPEC_PREFIXES = ("synthetic", "mocap", "bvh", "h36m", "h36m-cpn", "3dhp")
SPEC_HELP = ("synthetic | mocap:PATH.npz | bvh:DIR | h36m:DIR | h36m-cpn:DIR | 3dhp:DIR "
             "(see docs/data.md)")


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``'synthetic'`` -> ('synthetic', None); ``'mocap:/a/b.npz'`` -> ('mocap', '/a/b.npz'); ...

    Only the first ':' separates prefix and path (so paths may contain ':'). Raises DataError for an
    unknown prefix, a missing path, or a path given to ``synthetic``."""
    if not isinstance(spec, str) or not spec.strip():
        raise DataError(f"DATA spec must be a non-empty string, got {spec!r}. Expected {SPEC_HELP}.")
    spec = spec.strip()
    prefix, sep, path = spec.partition(":")
    prefix = prefix.strip().lower()
    if prefix not in SPEC_PREFIXES:
        raise DataError(f"Unknown DATA prefix {prefix!r} in spec {spec!r}. Expected {SPEC_HELP}.")
    if prefix == "synthetic":
        if sep and path.strip():
            raise DataError(f"DATA spec {spec!r}: 'synthetic' takes no path (it is generated in memory).")
        return "synthetic", None
    path = path.strip()
    if not path:
        raise DataError(f"DATA spec {spec!r}: '{prefix}:' needs a path, e.g. '{prefix}:/data/...'. "
                        f"Expected {SPEC_HELP}.")
    return prefix, os.path.expanduser(path)

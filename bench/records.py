"""One result line of a bench script: printed, and appended to a JSON-lines file when one is given."""
from __future__ import annotations

import json
from pathlib import Path


def emit(result: dict, append: str | None = None) -> None:
    print(json.dumps(result), flush=True)
    if append:
        with Path(append).open("a") as f:
            f.write(json.dumps(result) + "\n")

"""The chapters' exercises: a check that says right or not yet, without giving the answer away.

    >>> from itespy.exercises import check
    >>> check(0.5, expected=0.5, what="the coin toss's mirror rate")
    ✔ right: the coin toss's mirror rate
    True

A solution cell (tagged ``solution``, its source hidden until the learner opens it, in JupyterLab and in the
book) follows each exercise; under nbval the solutions run, so a check that prints "✔ right" in a
``# NBVAL_CHECK_OUTPUT`` cell proves the solution still works."""
from __future__ import annotations

import numpy as np


def check(answer, expected, what: str = "", rtol: float = 1e-6, atol: float = 1e-9) -> bool:
    """Print whether ``answer`` equals ``expected`` (numbers and arrays within ``rtol`` / ``atol``, anything
    else by ``==``); returns the verdict. ``None`` (the learner's placeholder) is 'not answered yet'."""
    label = f": {what}" if what else ""
    if answer is None:
        print(f"… not answered yet{label} (write your answer, then run the cell again)")
        return False
    try:
        ok = bool(np.allclose(np.asarray(answer, float), np.asarray(expected, float), rtol=rtol, atol=atol)) \
            and np.shape(answer) == np.shape(expected)
    except (TypeError, ValueError):
        ok = answer == expected
    print(f"✔ right{label}" if ok else f"✘ not yet{label}: try again, or open the solution")
    return ok

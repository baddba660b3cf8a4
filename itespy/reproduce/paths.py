"""Where the repository's notebooks and report figures are."""
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = REPO / "notebooks"
REPORT_FIGURES_DIR = REPO / "figures" / "report"

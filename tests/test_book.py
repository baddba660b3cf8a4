"""`python -m itespy book`: the parameters each chapter gets, and the rendering of an executed notebook into an
offline page (plotly figures, widgets, equations, iframes), on a small hand-made notebook (seconds; the real
build in Chromium is tests/test_book_browser.py)."""
import json
import re
from pathlib import Path

import nbformat
import pytest

from itespy import experiments as ex
from itespy.book import chapter_parameters, chapter_stems, render_site
from itespy.book.chapters import declared_parameters
from itespy.cli import build_parser
from itespy.reproduce.paths import NOTEBOOKS_DIR, REPO

PLOTLY_MIME = "application/vnd.plotly.v1+json"
FIG = {"data": [{"type": "scatter3d", "x": [0, 1], "y": [0, 1], "z": [0, 1], "mode": "lines"}],
       "layout": {"title": {"text": "a bone"}}}


def test_the_twelve_chapters_in_reading_order():
    stems = chapter_stems()
    assert len(stems) == 12 and stems[0] == "00_tour" and stems[3] == "02b_evaluation" and stems[-1] == "09_your_keypoints" and stems == sorted(stems)
    assert stems[6] == "04b_training_pitfalls"


def _params(stem, profile="smoke", quick=True, work=REPO / "runs" / "book-test"):
    return chapter_parameters(stem, declared_parameters(NOTEBOOKS_DIR / f"{stem}.ipynb"), profile, "synthetic", "cpu",
                              quick, work, work / "tables" / "cache")


def test_parameters_follow_the_profile_and_stay_inside_the_work_folder():
    quick, full = _params("00_tour"), _params("00_tour", "tutorial", quick=False)
    assert "max_train" not in quick and "teacher_epochs" not in quick  # the notebook's own small sizes
    assert full["max_train"] is None and full["student_epochs"] is None and full["profile"] == "tutorial"
    assert quick["out_dir"] == "../runs/book-test/runs/00_tour"  # relative to notebooks/: no machine paths
    assert quick["figures_dir"] == "../runs/book-test/figures/00_tour"  # never the repository's figures/
    assert _params("04_student")["teacher_run"] == "../runs/book-test/runs/03_teacher"
    tables = _params("05_ablation_losses")
    assert tables["overrides"] == ex.QUICK_OVERRIDES and tables["tables"] == ["T3"]
    assert tables["cache_dir"] == "../runs/book-test/tables/cache" and tables["out_dir"] == "../runs/book-test/tables"
    assert tables["results"] == "../results/tutorial/results.json"  # quick: the committed tutorial run, shown
    full_tables = _params("05_ablation_losses", "tutorial", quick=False)
    assert full_tables["overrides"] == {} and full_tables["results"] == ""  # trained as `reproduce` runs it
    assert "data" not in _params("09_your_keypoints")  # only names the parameters cell declares
    outside = _params("03_teacher", work=Path("/tmp/elsewhere"))
    assert outside["out_dir"] == "/tmp/elsewhere/runs/03_teacher"


def test_the_command_line_has_book():
    args = build_parser().parse_args(["book", "--profile", "tutorial", "--out", "site", "--no-quick"])
    assert args.profile == "tutorial" and args.out == "site" and args.quick is False


def _notebook(tmp_path) -> Path:
    """An executed-looking notebook: math, a plotly figure, a widget with saved state, a local iframe."""
    from plotly.offline import get_plotlyjs
    viewer = tmp_path / "viewer.html"
    viewer.write_text(f"<html><head><script>{get_plotlyjs()}</script></head><body>viewer</body></html>")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    state = {"box": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_slider", "IPY_MODEL_view"]}},
             "slider": {"model_name": "FloatSliderModel", "state": {"description": "yaw °"}},
             "view": {"model_name": "AnyModel", "state": {"figure_data": FIG["data"], "figure_layout": {"width": 400},
                                                          "_plotly_js": "x" * 1000}}}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": state, "version_major": 2,
                                                                            "version_minor": 0}}
    widget = nbformat.v4.new_output("execute_result", {"application/vnd.jupyter.widget-view+json": {
        "model_id": "box", "version_major": 2, "version_minor": 0}, "text/plain": "RotationWidget(...)"},
        execution_count=2)
    iframe = nbformat.v4.new_output("display_data", {"text/html": f'<iframe width="10" src="{viewer}"></iframe>'})
    nb.cells = [nbformat.v4.new_markdown_cell("# 07 · A chapter\n\nIt lifts $X$ to 3D:\n\n$$ Y = \\frac{a}{b} $$"),
                nbformat.v4.new_code_cell("fig", outputs=[nbformat.v4.new_output("display_data", {PLOTLY_MIME: FIG})]),
                nbformat.v4.new_code_cell("widget", outputs=[widget]),
                nbformat.v4.new_code_cell("viewer", outputs=[iframe])]
    path = tmp_path / "07_chapter.ipynb"
    nbformat.write(nb, str(path))
    return path


def test_a_page_renders_offline(tmp_path):
    record = {"stem": "07_chapter", "executed": str(_notebook(tmp_path)), "status": "ok", "seconds": 3.0,
              "profile": "smoke", "quick": True, "device": "cpu", "data": "synthetic", "finished": "2026-01-01",
              "itespy": "0.1.0", "code_version": "abc", "source": "notebooks/07_chapter.ipynb",
              "parameters": {"profile": "smoke", "data": "synthetic"}}
    site = tmp_path / "site"
    manifest = render_site([record], site, log=lambda *_: None)
    page = (site / "07_chapter.html").read_text()
    assert "<math" in page and "$$" not in page  # equations typeset at build time
    assert page.count('class="plotly-graph-div"') == 2  # the figure and the widget's saved view
    assert re.search(r'<script[^>]*src="static/plotly.min.js"', page) and "Plotly.newPlot" in page
    assert "Interactive widget" in page and "yaw °" in page and 'href="notebooks/07_chapter.ipynb"' in page
    assert "profile <code>smoke</code>" in page and "data <code>synthetic</code>" in page
    remote = re.findall(r'<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)="(https?:[^"]*)"', page)
    assert not remote, f"the page loads {remote} from the network"
    copied = site / "files" / "07_chapter" / "viewer.html"
    assert 'src="files/07_chapter/viewer.html"' in page and copied.exists()
    assert copied.stat().st_size < 10_000 and "../../static/plotly.min.js" in copied.read_text()  # no 2nd plotly.js
    assert (site / "static" / "plotly.min.js").stat().st_size > 1_000_000
    assert len(list(site.rglob("plotly*.js"))) == 1
    saved = json.loads((site / "notebooks" / "07_chapter.ipynb").read_text())
    assert "widgets" not in saved["metadata"]  # the widget state (two copies of plotly.js in real chapters)
    index = (site / "index.html").read_text()
    assert 'href="07_chapter.html"' in index and "07 · A chapter" in index and "<math" in index
    assert manifest["chapters"][0]["plotly_figures"] == 2 and manifest["chapters"][0]["widgets"] == 1
    assert json.loads((site / "book.json").read_text())["format"] == "itespy-book/1"
    assert 'href="glossary.html"' in index  # the reading aids
    glossary = (site / "glossary.html").read_text()
    assert "<table>" in glossary and "Reading order" in glossary and 'href="index.html"' in glossary


def test_a_failed_chapter_says_so(tmp_path):
    record = {"stem": "07_chapter", "executed": str(_notebook(tmp_path)), "status": "failed", "cell": 3,
              "error": "ValueError: <bad>", "seconds": 1.0, "profile": "smoke", "quick": True, "device": "cpu",
              "finished": "2026-01-01", "itespy": "0.1.0", "code_version": "abc", "source": "x", "parameters": {}}
    manifest = render_site([record], tmp_path / "site", log=lambda *_: None)
    page = (tmp_path / "site" / "07_chapter.html").read_text()
    assert "did not run to the end" in page and "ValueError: &lt;bad&gt;" in page
    assert manifest["failed"] == ["07_chapter"]


@pytest.mark.parametrize("bad", [{"profile": "huge"}, {"jobs": 0}, {"only": "42"}])
def test_bad_arguments_fail_before_anything_runs(tmp_path, bad):
    from itespy.book import execute_chapters
    with pytest.raises(ValueError):
        execute_chapters(**{"work": tmp_path, **bad})


def _chapter_equations():
    for path in sorted(NOTEBOOKS_DIR.glob("0*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "markdown":
                for m in re.finditer(r"\$\$(.+?)\$\$|\$(.+?)\$", cell.source, re.S):
                    yield path.stem, m.group(1) or m.group(2)


def test_every_chapter_equation_converts_to_mathml_without_raw_tex():
    from itespy.book.render import mathml, unconverted_tex
    equations = list(_chapter_equations())
    assert len(equations) > 100
    left = [(stem, tex) for stem, tex in equations
            if unconverted_tex(html := mathml(tex, "block")) or "book-tex" in html]
    assert not left, f"{len(left)} equation(s) would show raw TeX, e.g. {left[:3]}"


def test_sized_norm_bars_convert():  # Eq. 2, 3, 6, 7 write \big\lVert ... \big\rVert_F^2
    from itespy.book.render import mathml, unconverted_tex
    html = mathml(r"\frac1N \big\lVert P(\hat R\,\hat Y^t) - X \big\rVert_F^2 + \Big\| a \Big\|", "block")
    assert not unconverted_tex(html) and html.count("\u2016") == 4


def test_a_solution_is_folded_on_the_page():
    from itespy.book.render import SOLUTION_SUMMARY, fold_solutions
    exercise = nbformat.v4.new_markdown_cell("**1 · Predict.** What is 6 × 7?")
    solution = nbformat.v4.new_code_cell("answer = 6 * 7\nprint(answer)", metadata={"tags": ["solution"]},
                                         outputs=[nbformat.v4.new_output("stream", text="42\n")])
    folded = fold_solutions([exercise, solution])
    assert [c.cell_type for c in folded] == ["markdown", "markdown", "code"]
    assert folded[1].source.startswith('<details class="book-solution"><summary>' + SOLUTION_SUMMARY)
    assert "answer = 6 * 7" in folded[1].source and folded[2].source == ""  # the code only inside the fold
    assert folded[2].outputs[0]["text"] == "42\n" and folded[2].metadata["tags"] == ["solution-output"]

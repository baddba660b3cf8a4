"""Commit policy for notebooks/*.ipynb (see tools/notebooks.py).

Committed notebooks keep outputs only in ``# NBVAL_CHECK_OUTPUT`` cells, as plain text without
execution counts; exactly one cell is tagged ``parameters`` (papermill) and it only assigns literals;
the kernel is python3; no notebook exceeds 200 KB; stripping a committed notebook changes nothing."""
import ast
import importlib.util
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
REQUIRED_PARAMETERS = {"profile", "seed", "figures_dir"}


def _load_tool():
    spec = importlib.util.spec_from_file_location("itespy_notebook_tool", REPO / "tools" / "notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = _load_tool()


def test_there_are_notebooks():
    names = {p.stem for p in NOTEBOOKS}
    assert {"01_projection_ambiguity", "02_decomposition_ambiguity"} <= names


@pytest.fixture(params=NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def notebook(request):
    path = request.param
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    return path, nb


def test_size_and_kernel(notebook):
    path, nb = notebook
    assert path.stat().st_size <= tool.MAX_BYTES, f"{path.name} is {path.stat().st_size / 1024:.0f} KB (> 200 KB)"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    assert "widgets" not in nb.metadata and "papermill" not in nb.metadata


def test_one_parameters_cell_with_literals(notebook):
    path, nb = notebook
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged 'parameters', expected exactly 1"
    cell = nb.cells[tagged[0]]
    first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    assert cell.cell_type == "code" and tagged[0] == first_code, "the parameters cell must be the first code cell"
    names = set()
    for stmt in ast.parse(cell.source).body:
        assert isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name), \
            f"{path.name}: the parameters cell may only assign literals, got {ast.unparse(stmt)!r}"
        ast.literal_eval(stmt.value)
        names.add(stmt.targets[0].id)
    assert REQUIRED_PARAMETERS <= names, f"{path.name}: parameters missing {REQUIRED_PARAMETERS - names}"
    figures_dir = ast.literal_eval(next(s.value for s in ast.parse(cell.source).body
                                        if s.targets[0].id == "figures_dir"))
    assert figures_dir == f"../figures/{path.stem}"


def test_outputs_only_in_check_cells_and_plain(notebook):
    path, nb = notebook
    checks = [c for c in nb.cells if tool.is_check_cell(c)]
    assert checks, f"{path.name}: needs at least one '{tool.CHECK_MARKER}' cell for nbval to compare"
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    for ordinal, cell in enumerate(code_cells, start=1):
        if not tool.is_check_cell(cell):
            assert cell.execution_count is None, f"{path.name}: execution counts must be stripped"
            assert not cell.outputs, f"{path.name}: outputs in a non-check cell:\n{cell.source[:200]}"
            continue
        assert cell.outputs, f"{path.name}: a check cell has no stored output to compare:\n{cell.source[:200]}"
        # nbval only compares cells with a count; a fixed one (the ordinal) keeps diffs quiet
        assert cell.execution_count == ordinal
        kinds = [(o.output_type, o.get("name")) for o in cell.outputs]
        assert all(a != b or a[0] != "stream" for a, b in zip(kinds, kinds[1:])), "uncoalesced stream outputs"
        for out in cell.outputs:
            assert out.output_type in ("stream", "display_data", "execute_result"), out.output_type
            assert out.get("execution_count") is None
            if out.output_type == "stream":
                assert out.name == "stdout"
            else:
                assert set(out.data) == {"text/plain"}, f"{path.name}: non-text output {set(out.data)}"


def test_notebook_is_already_stripped(notebook):
    path, nb = notebook
    assert tool.strip(nb) == nb, f"{path.name}: run `python tools/notebooks.py strip {path.relative_to(REPO)}`"


def test_strip_keeps_only_check_outputs():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1", execution_count=3, outputs=[
            nbformat.v4.new_output("display_data", data={"image/png": "AAAA", "text/plain": "<Figure>"})]),
        nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(1); 2", execution_count=4, outputs=[
            nbformat.v4.new_output("stream", name="stdout", text="1\n"),
            nbformat.v4.new_output("execute_result", data={"text/plain": "2", "text/html": "<b>2</b>"},
                                   execution_count=4)]),
    ])
    nb.metadata["widgets"] = {"state": {}}
    clean = tool.strip(nb)
    assert clean.cells[0].outputs == [] and clean.cells[0].execution_count is None
    assert clean.cells[1].execution_count == 2
    assert [o.output_type for o in clean.cells[1].outputs] == ["stream", "display_data"]
    assert clean.cells[1].outputs[1].data == {"text/plain": "2"}
    assert "widgets" not in clean.metadata and clean.metadata.kernelspec.name == "python3"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_solutions_are_folded_and_follow_an_exercise(notebook):
    """An exercise's solution (tag ``solution``) keeps its source hidden in JupyterLab until opened, and comes
    after a markdown cell that states an exercise. nbval runs every solution, so one that raises fails CI; a
    solution with a checkable answer ends with ``itespy.exercises.check`` in a ``# NBVAL_CHECK_OUTPUT`` cell, so a
    wrong answer fails it too."""
    nb = nbformat.read(notebook, as_version=4)
    seen_exercise = False
    for cell in nb.cells:
        if cell.cell_type == "markdown" and "Exercise" in cell.source:
            seen_exercise = True
        if "solution" in cell.metadata.get("tags", []):
            assert cell.cell_type == "code" and seen_exercise, f"{notebook.name}: a solution before any exercise"
            assert cell.metadata.get("jupyter", {}).get("source_hidden") is True, f"{notebook.name}: solution not folded"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_reads_every_parameter_the_cell_assigns(path):
    """papermill skips a line it cannot parse (e.g. quotes or '=' in the comment) with only a warning, and
    then neither `reproduce` nor the book can set that parameter."""
    from itespy.book.chapters import declared_parameters
    cell = next(c for c in nbformat.read(path, as_version=4).cells if "parameters" in c.metadata.get("tags", []))
    assigned = [t.id for node in ast.parse(cell.source).body if isinstance(node, ast.Assign) for t in node.targets]
    assert list(declared_parameters(path)) == assigned

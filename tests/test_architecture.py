"""The package's layout (docs/architecture.md): dependencies run one way, no import circles, small modules.

Reads every module's imports with ``ast`` (module level and inside functions; imports under
``if TYPE_CHECKING:`` are annotations only and do not count)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "itespy"
MAX_LINES = 450  # "a few hundred lines": no module is a room a newcomer gets lost in

# Layers, lowest first: a module may import modules of its own layer or of a lower one, never of a higher one.
LAYERS = (
    ("foundation", ("itespy", "itespy.skeleton", "itespy.coco", "itespy.io", "itespy.geometry", "itespy.metrics")),
    ("data", ("itespy.data",)),
    ("config", ("itespy.config",)),
    ("models and losses", ("itespy.models", "itespy.losses")),
    ("training", ("itespy.devices", "itespy.checkpoints", "itespy.runfolder", "itespy.inference", "itespy.train")),
    ("evaluation", ("itespy.evaluate", "itespy.run", "itespy.pretrained")),
    ("figures and widgets", ("itespy.viz",)),
    ("experiments", ("itespy.experiments",)),
    ("applications", ("itespy.reproduce", "itespy.predict", "itespy.book", "itespy.samples", "itespy.cli",
                      "itespy.__main__")),
)


def module_files() -> dict:
    """{dotted module name: path} of every module of the package (a package's name is its __init__)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _type_checking_nodes(tree) -> set:
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skip.update(id(n) for n in ast.walk(child))
    return skip


def imports_of(name: str, path: Path, modules: dict) -> set:
    """The package's modules that ``name`` imports (``from .x import y`` counts y when y is a module)."""
    tree = ast.parse(path.read_text())
    skip = _type_checking_nodes(tree)
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target)
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict:
    modules = module_files()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def import_circles(graph: dict) -> list:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return circles


def layer_of(module: str) -> int:
    best, best_len = None, -1
    for rank, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best_len:
                best, best_len = rank, len(p)
    if best is None:
        raise AssertionError(f"module {module} belongs to no layer of tests/test_architecture.py: add it "
                             "(and its line in docs/architecture.md)")
    return best


def test_the_reader_sees_the_real_imports():
    graph = import_graph()
    assert "itespy.data.errors" in graph["itespy.data.load"]
    assert "itespy.models.blocks" in graph["itespy.models.teacher"]
    assert "itespy.train" in graph["itespy.run"]  # module-level
    assert "itespy.devices" in graph["itespy.cli"]  # inside a function


def test_the_circle_finder_finds_a_circle():
    assert import_circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circles():
    circles = import_circles(import_graph())
    assert not circles, "import circles (each a set of modules that import each other): " + "; ".join(
        " <-> ".join(c) for c in circles)


def test_dependencies_run_one_way():
    graph = import_graph()
    upward = [f"{m} ({LAYERS[layer_of(m)][0]}) imports {d} ({LAYERS[layer_of(d)][0]})"
              for m, deps in sorted(graph.items()) for d in sorted(deps) if layer_of(d) > layer_of(m)]
    assert not upward, "imports against the flow of docs/architecture.md:\n" + "\n".join(upward)


@pytest.mark.parametrize("name", sorted(module_files()))
def test_module_is_small(name):
    lines = len(module_files()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name}: {lines} lines; split it so each module is one concept (docs/architecture.md)"


def test_architecture_doc_names_every_module():
    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    missing = [m for m in module_files() if m != "itespy" and f"`{m.removeprefix('itespy.')}`" not in doc]
    assert not missing, f"docs/architecture.md has no line for: {missing}"


def test_no_module_imports_another_modules_private_names():
    """A name used across modules is public (docs/architecture.md); an underscore name stays in its module."""
    crossings = []
    for name, path in module_files().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("itespy")):
                crossings += [f"{name} imports {node.module}.{a.name}" for a in node.names
                              if a.name.startswith("_") and not a.name.startswith("__")]
    assert not crossings, "\n".join(crossings)

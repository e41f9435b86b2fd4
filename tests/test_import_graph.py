"""No import circle anywhere in `src/culturellm`: the dependency between modules runs one way.

The graph is built from the source with `ast` (no import runs): every `import` and `from ... import`
statement counts, at module level, inside functions and under `if TYPE_CHECKING:` alike, relative
imports resolved against the importing module's package. `from PKG import NAME` counts as importing
`PKG.NAME` when that is a module of the tree, else `PKG` itself (its `__init__`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "culturellm"

# Circles known to be fixed on another branch; each entry must match a circle found today, so the test
# fails once the circle is gone and whoever merges the fix removes the entry.
EXPECTED: dict[str, frozenset[str]] = {}  # none left: a new circle is a failure


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((SRC / ROOT).rglob("*.py"))}


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of the tree that module `name` (at `path`) imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:  # `import a.b.c` where c is a name: the closest module
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found & known


def import_graph() -> nx.DiGraph:
    mods = modules()
    graph = nx.DiGraph()
    graph.add_nodes_from(mods)
    for name, path in mods.items():
        graph.add_edges_from((name, t) for t in imported(name, path, set(mods)))
    return graph


def cycles(graph: nx.DiGraph) -> list[frozenset[str]]:
    """Each circle as the set of modules of one strongly connected component (size > 1)."""
    return [frozenset(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]


def test_graph_sees_relative_and_from_package_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "a.py").write_text("from . import b\nfrom ..c import X\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from pkg.sub import a\n")
    (pkg / "c.py").write_text("X = 1\n")
    known = {"pkg", "pkg.sub", "pkg.sub.a", "pkg.sub.b", "pkg.c"}
    assert imported("pkg.sub.a", pkg / "sub" / "a.py", known) == {"pkg.sub.b", "pkg.c"}
    assert imported("pkg.sub.b", pkg / "sub" / "b.py", known) == {"pkg.sub.a"}


def test_no_import_cycle_in_src():
    found = cycles(import_graph())
    unexpected = [sorted(c) for c in found if c not in EXPECTED.values()]
    assert not unexpected, f"{len(unexpected)} import circle(s) in src/: {unexpected}"


def package_of(module: str) -> str:
    """`culturellm.evaluate.runner` -> `culturellm.evaluate`; a top-level module is its own package."""
    return ".".join(module.split(".")[:2])


def package_graph(graph: nx.DiGraph) -> nx.DiGraph:
    packages = nx.DiGraph()
    packages.add_nodes_from(package_of(m) for m in graph)
    packages.add_edges_from(
        (package_of(a), package_of(b)) for a, b in graph.edges if package_of(a) != package_of(b)
    )
    return packages


def test_package_of():
    assert package_of("culturellm.evaluate.runner") == "culturellm.evaluate"
    assert package_of("culturellm.runlayout") == "culturellm.runlayout"
    assert package_of("culturellm") == "culturellm"


# Arrows that would run back up (docs/architecture.md): the survey data below the culture registry, the
# model layer below the server, the names of a run's paths below everything that writes them, the
# meaning checks below generation and the dataset stage.
FORBIDDEN = [
    ("culturellm.wvs", "culturellm.cultures"),
    ("culturellm.wvs", "culturellm.seeds"),
    ("culturellm.cultures", "culturellm.seeds"),
    ("culturellm.llm", "culturellm.serve"),
    ("culturellm.meaning", "culturellm.augment"),
    ("culturellm.meaning", "culturellm.dataset"),
    ("culturellm.dataset", "culturellm.augment"),
]


def test_no_package_arrow_back_up():
    packages = package_graph(import_graph())
    circles = [sorted(c) for c in nx.strongly_connected_components(packages) if len(c) > 1]
    assert not circles, f"packages that import each other: {circles}"
    back = [(a, b) for a, b in FORBIDDEN if packages.has_edge(a, b)]
    assert not back, f"package arrows that run back up: {back}"


def test_runlayout_imports_nothing_of_culturellm():
    """runlayout only names paths: it must not pull in augment, evaluate or anything else."""
    graph = import_graph()
    assert not set(graph.successors("culturellm.runlayout"))


def test_fitting_module_only_for_scripts():
    """The scikit-learn fitting code (meaning.fit, and the gate's meaning.gatefit built on it) is for
    scripts/fit_verifier.py, the benchmarks and the tests; no other module of the package imports it
    (the judge's routing lives in meaning.judge)."""
    graph = import_graph()
    fitting = {"culturellm.meaning.fit", "culturellm.meaning.gatefit"}
    for mod in fitting:
        assert set(graph.predecessors(mod)) <= fitting - {mod}, mod


def test_package_graph_sees_a_back_arrow():
    graph = nx.DiGraph(
        [("culturellm.llm.cli", "culturellm.serve.app"), ("culturellm.serve.app", "culturellm.llm")]
    )
    packages = package_graph(graph)
    assert packages.has_edge("culturellm.llm", "culturellm.serve")
    assert [sorted(c) for c in nx.strongly_connected_components(packages) if len(c) > 1] == [
        ["culturellm.llm", "culturellm.serve"]
    ]

"""The package's structure: no import circle, no private name reached across subpackages, and
the truth read only by evaluation code."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "kuairec_utils"


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def imports(path: Path, known: dict[str, Path]) -> list[tuple[str, str]]:
    """(module, name) of every ``kuairec_utils`` import in the file, at any depth (a function's
    own imports too): the module a name is read from, and the name."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("kuairec_utils"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.append((full, "") if full in known else (node.module, alias.name))
        elif isinstance(node, ast.Import):
            found += [(a.name, "") for a in node.names if a.name.startswith("kuairec_utils")]
    return found


def import_graph() -> dict[str, set[str]]:
    """Each module's imported modules (a package's own ancestors left out: importing a
    submodule runs them anyway)."""
    known = modules()
    graph = {}
    for name, path in known.items():
        deps = {module for module, _ in imports(path, known)} - {name}
        graph[name] = {d for d in deps if not name.startswith(d + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.append(sorted([v, *component]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_package_has_no_import_circle():
    assert cycles(import_graph()) == []


def subpackage(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_no_private_name_is_read_across_subpackages():
    known = modules()
    crossing = [
        f"{name} reads {module}.{attr}"
        for name, path in known.items()
        for module, attr in imports(path, known)
        if attr.startswith("_") and subpackage(module) != subpackage(name)
    ]
    assert crossing == []


def test_only_evaluation_code_reads_the_ground_truth():
    """The truth's reader (``evaluation.truth``) and the simulator's world are imported only by
    evaluation code: ``evaluation/`` and the stages' notebooks (which report against it), never
    by an estimator's module."""
    known = modules()
    readers = {
        name
        for name, path in known.items()
        for module, _ in imports(path, known)
        if module.startswith("kuairec_utils.evaluation")
    }
    allowed = ("kuairec_utils.evaluation", "kuairec_utils.debias.run", "kuairec_utils.causal.run")
    assert sorted(r for r in readers if not r.startswith(allowed)) == []

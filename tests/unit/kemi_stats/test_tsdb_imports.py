"""kemi_stats.tsdb's modules import one another without a cycle, lazy imports included."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import kemi_stats.tsdb

_PACKAGE = "kemi_stats.tsdb"


def _imports(path: Path) -> set[str]:
    """The modules of the package that ``path`` imports, wherever the import statement is."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name.removeprefix(f"{_PACKAGE}.") for name in found if name.startswith(f"{_PACKAGE}.")}


def test_no_import_cycle_in_tsdb() -> None:
    here = Path(kemi_stats.tsdb.__file__).parent
    graph = {p.stem: _imports(p) for p in here.glob("*.py") if p.stem != "__init__"}
    assert {"query", "influx", "victoria"} <= graph.keys()
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError naming the cycle

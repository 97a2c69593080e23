"""import-linter contract types that also see the single-file modules at the project root.

grimp builds its graph from packages only (import-linter refuses a ``.py`` file as a root
package), so ``app.py``, ``mcp_server.py``, ``settings.py`` and the REPL faces would be
outside every contract: their own imports unread, and an import of one of them from a
package only an external name. These types graft each listed file onto the graph first, as
a module with the imports it makes, then check as the stock contract does. pyproject.toml
names them under ``contract_types``; ``lint-imports`` (``make check``) loads them from here.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
from typing import Any

from grimp import ImportGraph
from importlinter.contracts.forbidden import ForbiddenContract
from importlinter.contracts.independence import IndependenceContract
from importlinter.contracts.layers import LayersContract
from importlinter.contracts.protected import ProtectedContract
from importlinter.domain.contract import ContractCheck


def _source_of(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None or spec.submodule_search_locations is not None:
        raise ValueError(f"{name!r} is not a single-file module on the path")
    return Path(spec.origin)


def _imports(path: Path) -> list[tuple[list[str], int, str]]:
    """Every absolute import in the file, function-local and TYPE_CHECKING ones included, as
    (what it may name, best first; line; line text): ``from a import b`` names the module
    ``a.b`` if there is one, else ``a``."""
    lines = path.read_text().splitlines()
    found: list[tuple[list[str], int, str]] = []
    for node in ast.walk(ast.parse("\n".join(lines), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [[alias.name] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [[f"{node.module}.{alias.name}", node.module] for alias in node.names]
        else:
            continue
        text = lines[node.lineno - 1].strip()
        found += [(candidates, node.lineno, text) for candidates in names]
    return found


def _known(graph: ImportGraph, candidates: list[str]) -> str | None:
    """The first candidate the graph knows as a module, else the nearest known ancestor of
    the last one: an external package is one squashed module."""
    for candidate in candidates:
        if candidate in graph.modules:
            return candidate
    parts = candidates[-1].split(".")[:-1]
    while parts:
        if (ancestor := ".".join(parts)) in graph.modules:
            return ancestor
        parts.pop()
    return None


def graft_root_modules(graph: ImportGraph, names: list[str]) -> None:
    """Add each single-file module and its imports of modules the graph knows (the product,
    and the external packages the packages import). An import of a root module from a package
    has already put it in the graph, as a squashed external: it stays that node, so the edge
    into it is kept."""
    for name in names:
        if name not in graph.modules:
            graph.add_module(name)
    for name in names:
        for candidates, line, text in _imports(_source_of(name)):
            imported = _known(graph, candidates)
            if imported is not None and imported != name:
                graph.add_import(
                    importer=name, imported=imported, line_number=line, line_contents=text
                )


class _GraftsRootModules:
    """Reads ``root_modules`` from the [tool.importlinter] table: the same files for every
    contract, so none can leave one out."""

    session_options: dict[str, Any]

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        names = self.session_options.get("root_modules")
        if not isinstance(names, list) or not names:
            raise ValueError("[tool.importlinter] needs root_modules: a list of module names")
        graft_root_modules(graph, [str(name) for name in names])
        checked: ContractCheck = super().check(graph, verbose)  # type: ignore[misc]
        return checked


class RootLayersContract(_GraftsRootModules, LayersContract):
    """``layers``, with the listed single-file modules in the graph."""


class RootIndependenceContract(_GraftsRootModules, IndependenceContract):
    """``independence``, with the listed single-file modules in the graph."""


class RootForbiddenContract(_GraftsRootModules, ForbiddenContract):
    """``forbidden``, with the listed single-file modules in the graph."""


class RootProtectedContract(_GraftsRootModules, ProtectedContract):
    """``protected``, with the listed single-file modules in the graph."""


__all__ = [
    "RootForbiddenContract",
    "RootIndependenceContract",
    "RootLayersContract",
    "RootProtectedContract",
    "graft_root_modules",
]

"""import-linter contract types that also see the single-file modules at the project root.

grimp builds its graph from packages only (import-linter refuses a ``.py`` file as a root
package), so ``app.py``, ``mcp_server.py``, ``settings.py`` and the REPL faces would be
outside every contract: their own imports unread, and an import of one of them from a
package only an external name. These types graft each listed file onto the graph first, as
a module with the imports it makes, then check as the stock contract does. pyproject.toml
names them under ``contract_types``; ``lint-imports`` (``make check``) loads them from here.

``area_surfaces`` keeps the areas of one package (``services/positions``, ``services/costs``,
...) to each other's public names: a module of one area may import another area's package
(the names its ``__init__`` offers) but none of its modules. So an area can rearrange its
own modules without reaching into anyone else's.

``root_acyclic`` is one more: no import cycle anywhere in the graph, where grimp's
siblings-only check (``acyclic_siblings``) cannot look: between a package's ``__init__`` and
its own modules, and across any number of packages.
"""

from __future__ import annotations

import ast
import importlib.util
import itertools
from pathlib import Path
from typing import Any

from grimp import ImportGraph
from importlinter.application import output
from importlinter.contracts.forbidden import ForbiddenContract
from importlinter.contracts.independence import IndependenceContract
from importlinter.contracts.layers import LayersContract
from importlinter.contracts.protected import ProtectedContract
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


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


def _module_file(name: str) -> Path | None:
    """Where a product module's source is, found from its top-level package without
    importing anything (``find_spec`` of a dotted name would run the parents' ``__init__``)."""
    top, *rest = name.split(".")
    spec = importlib.util.find_spec(top)
    if spec is None or spec.origin is None:
        return None
    if spec.submodule_search_locations is None:
        return Path(spec.origin) if not rest else None
    folder = Path(next(iter(spec.submodule_search_locations))).joinpath(*rest)
    for candidate in (folder / "__init__.py", folder.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def add_package_namespace_imports(graph: ImportGraph, tops: set[str]) -> None:
    """Add ``from <package> import <name>`` as an import of the package itself.

    grimp records only ``<package>.<name>`` when the name is a submodule, but Python runs the
    package's ``__init__`` first and reads the name from it: a child doing that while the
    ``__init__`` imports it is a cycle (the ``__init__`` may not have the name yet)."""
    for module in sorted(m for m in graph.modules if m.split(".")[0] in tops):
        path = _module_file(module)
        if path is None:
            continue
        lines = path.read_text().splitlines()
        here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        for node in ast.walk(ast.parse("\n".join(lines), filename=str(path))):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                parts = here[: len(here) - node.level + 1] + ([node.module] if node.module else [])
                target = ".".join(parts)
            else:
                target = node.module or ""
            if target.split(".")[0] not in tops or target == module:
                continue
            if target not in graph.modules or graph.is_module_squashed(target):
                continue
            if not graph.find_children(target):
                continue
            graph.add_import(
                importer=module,
                imported=target,
                line_number=node.lineno,
                line_contents=lines[node.lineno - 1].strip(),
            )


def import_cycles(graph: ImportGraph) -> list[list[str]]:
    """Every group of modules that import one another in a loop (Tarjan's strongly connected
    components, iteratively), each sorted, largest groups first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, imported = work[-1]
            for target in imported:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append(
                        (target, iter(sorted(graph.find_modules_directly_imported_by(target))))
                    )
                    break
                if target in on_stack:
                    low[module] = min(low[module], index[target])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[module])
                if low[module] == index[module]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == module:
                            break
                    if len(group) > 1:
                        groups.append(sorted(group))
    return sorted(groups, key=lambda group: (-len(group), group))


def _one_loop(graph: ImportGraph, group: list[str]) -> list[tuple[str, str, int, str]]:
    """The shortest loop through the group's first module, step by step with its line."""
    start = group[0]
    chains = [
        chain
        for imported in graph.find_modules_directly_imported_by(start)
        if imported in group
        and (chain := graph.find_shortest_chain(importer=imported, imported=start))
    ]
    loop = [start, *min(chains, key=len)]
    steps = []
    for importer, imported in itertools.pairwise(loop):
        details = graph.get_import_details(importer=importer, imported=imported)
        first = details[0] if details else {"line_number": 0, "line_contents": ""}
        steps.append((importer, imported, first["line_number"], first["line_contents"]))
    return steps


class _Acyclic(Contract):
    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        tops = {
            str(name)
            for option in ("root_packages", "root_modules")
            for name in self.session_options.get(option, [])
        }
        add_package_namespace_imports(graph, tops)
        cycles = [
            {"modules": group, "loop": _one_loop(graph, group)} for group in import_cycles(graph)
        ]
        return ContractCheck(kept=not cycles, warnings=[], metadata={"cycles": cycles})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for cycle in check.metadata["cycles"]:
            output.print_error(f"An import cycle: {', '.join(cycle['modules'])}")
            output.new_line()
            for importer, imported, line, text in cycle["loop"]:
                output.print(f"- {importer} -> {imported} (l.{line}: {text})")
            output.new_line()


class RootAcyclicContract(_GraftsRootModules, _Acyclic):
    """No import cycle anywhere among the root packages and the listed single-file modules,
    counting ``from <package> import <name>`` as an import of the package's ``__init__``."""


class AreaSurfacesContract(Contract):
    """Each area (a package directly under ``container``, its ``__init__`` included, or a
    single module there) imports another area only through that area's package, never one
    of its modules. ``exempt`` areas (the composition root,
    which builds every area's parts) may import anything; ``shared`` packages (the schema)
    may be imported module by module."""

    container = fields.StringField()
    exempt = fields.ListField(subfield=fields.StringField(), required=False)
    shared = fields.ListField(subfield=fields.StringField(), required=False)

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        container = str(self.container)
        depth = container.count(".") + 1
        exempt = {str(name) for name in (self.exempt or [])}
        shared = {str(name) for name in (self.shared or [])}
        breaches = []
        for importer in sorted(graph.find_descendants(container)):
            parts = importer.split(".")
            if len(parts) <= depth or parts[depth] in exempt:
                continue  # the container itself, or a module of an exempt area
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                theirs = imported.split(".")
                if (
                    theirs[:depth] != parts[:depth]
                    or len(theirs) <= depth + 1
                    or theirs[depth] in (parts[depth], *shared)
                ):
                    continue
                for detail in graph.get_import_details(importer=importer, imported=imported):
                    breaches.append(
                        (importer, imported, detail["line_number"], detail["line_contents"])
                    )
        return ContractCheck(kept=not breaches, warnings=[], metadata={"breaches": breaches})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for importer, imported, line, text in check.metadata["breaches"]:
            area = ".".join(imported.split(".")[: str(self.container).count(".") + 2])
            output.print_error(
                f"{importer} imports {imported}, a module of another area: import its "
                f"names from {area} (and name them in its __init__)"
            )
            output.print(f"- l.{line}: {text}")
            output.new_line()


__all__ = [
    "AreaSurfacesContract",
    "RootAcyclicContract",
    "RootForbiddenContract",
    "RootIndependenceContract",
    "RootLayersContract",
    "RootProtectedContract",
    "add_package_namespace_imports",
    "graft_root_modules",
    "import_cycles",
]

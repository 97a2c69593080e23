"""The house holds: four layers, imports only point down, no cycles, the emulator kept outside,
small modules, and a lazy start.

The layer contract lives in ``pyproject.toml`` ([tool.importlinter]) and is run here as
``make check`` runs it. The contract is also shown to fail: each kind of violation is
added to a copy of the product, and ``lint-imports`` must refuse it. The single-file
modules (``app.py``, ``settings.py``, ...) are grafted onto grimp's graph by the contract
types in ``tests/import_contracts.py``, so they are probed here like the packages.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "providers", "services", "routes", "mcp_tools", "cli", "sandbox")
SINGLE_FILE_MODULES = (
    "app.py",
    "mcp_server.py",
    "settings.py",
    "plaid_loader.py",
    "snaptrade_loader.py",
    "snaptrade_broker_adapter.py",
)
CONTRACT_TYPES = "tests/import_contracts.py"
MAX_MODULE_LINES = 400
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        # Wide enough that no module name in the report is wrapped onto two lines.
        env={**os.environ, "COLUMNS": "400"},
    )


def test_the_layer_contract_holds() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.fixture(scope="module")
def product_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The product's code and its contract, copied, so a test can add a bad import to it."""
    root = tmp_path_factory.mktemp("product")
    ignore = shutil.ignore_patterns("__pycache__", "templates", "static")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, root / package, ignore=ignore)
    for name in (*SINGLE_FILE_MODULES, "pyproject.toml", CONTRACT_TYPES):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, root / name)
    return root


def lint_with_additions(root: Path, additions: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the linter on the copy with each source added: a new module, or appended to an
    existing one; the copy is put back as it was afterwards."""
    originals = {
        path: path.read_text() if path.exists() else None
        for path in (root / name for name in additions)
    }
    try:
        for path, source in zip(originals, additions.values(), strict=True):
            path.write_text((originals[path] or "") + "\n" + source)
        return lint_imports(root)
    finally:
        for path, original in originals.items():
            if original is None:
                path.unlink()
            else:
                path.write_text(original)


# Each violation: the modules to add to (or, if they exist, append to) in the copy.
VIOLATIONS: dict[str, dict[str, str]] = {
    "a service imports an entry point": {"services/probe.py": "import routes.common\n"},
    "a module in a services subpackage imports an entry point": {
        "services/trading/probe.py": "import routes.common\n"
    },
    "an adapter imports a service": {"providers/probe.py": "import services.clock\n"},
    "core imports an adapter": {"core/probe.py": "import providers.calls\n"},
    "a function-local upward import": {
        "services/probe.py": "def later():\n    import mcp_tools.boundary\n"
    },
    "a service imports the emulator": {"services/probe.py": "from sandbox import demo\n"},
    "the emulator imports the product": {"sandbox/probe.py": "import services.clock\n"},
    "the emulator imports the settings": {"sandbox/probe.py": "import settings\n"},
    "a service imports a provider SDK": {"services/probe.py": "import plaid\n"},
    "a route skips the services": {"routes/probe.py": "import providers.calls\n"},
    "a service imports a REPL face": {"services/probe.py": "import plaid_loader\n"},
    "a service imports the trade REPL face": {
        "services/probe.py": "import services.trade_execution_service\n"
    },
    "two services import each other": {
        "services/probe.py": "import services.probe_twin\n",
        "services/probe_twin.py": "import services.probe\n",
    },
    # Cycles anywhere, the emulator included: between siblings, and between a package's
    # __init__ and its own modules (`from package import name` runs and reads the __init__).
    "two emulator modules import each other": {
        "sandbox/probe.py": "import sandbox.probe_twin\n",
        "sandbox/probe_twin.py": "import sandbox.probe\n",
    },
    "an emulator module imports a sibling through the package that imports it": {
        "sandbox/activity/model.py": "from sandbox.activity import lots\n"
    },
    "a package's __init__ holds a helper its own module imports": {
        "sandbox/activity/__init__.py": "def probe_helper() -> None: ...\n",
        "sandbox/activity/corrections.py": "from sandbox.activity import probe_helper\n",
    },
    "a cycle through three service packages, one import function-local": {
        "services/trading/__init__.py": "import services.probe\n",
        "services/probe.py": "from services.fx import probe_fx\n",
        "services/fx/probe_fx.py": "def later():\n    from services import trading\n",
    },
    # Areas of services/ meet only through their packages' public names.
    "an area imports another area's module": {
        "services/costs/probe.py": "from services.positions.store import PositionStore\n"
    },
    "a module at the top of services/ imports an area's module": {
        "services/probe.py": "from services.positions.store import PositionStore\n"
    },
    "an area imports another area's module inside a function": {
        "services/trading/probe.py": "def later():\n    import services.web_access.brake\n"
    },
    # Cycles and upward imports through the single-file modules.
    "a route imports the app that registers it": {"routes/probe.py": "import app\n"},
    "a tool imports the MCP server that registers it": {
        "mcp_tools/probe.py": "def later():\n    import mcp_server\n"
    },
    "a CLI command imports a REPL face": {"cli/probe.py": "import snaptrade_loader\n"},
    "a core module settings reads imports settings": {
        "core/setting_values.py": "import settings\n"
    },
    "settings imports a service": {"settings.py": "def later():\n    import services.clock\n"},
    "settings imports an adapter": {"settings.py": "import providers.calls\n"},
    "the app and the MCP server import each other": {
        "app.py": "import mcp_server\n",
        "mcp_server.py": "import app\n",
    },
    "the app imports the emulator": {"app.py": "import sandbox\n"},
    "the MCP server skips the services": {"mcp_server.py": "import providers.calls\n"},
    "the app imports a provider SDK": {"app.py": "import snaptrade_client\n"},
}


@pytest.mark.parametrize("violation", sorted(VIOLATIONS))
def test_the_contract_refuses_each_kind_of_bad_import(product_copy: Path, violation: str) -> None:
    result = lint_with_additions(product_copy, VIOLATIONS[violation])
    assert result.returncode != 0, f"{violation} was not caught:\n{result.stdout}"
    assert "BROKEN" in result.stdout


def _product_folders() -> list[Path]:
    return sorted(
        folder
        for package in PACKAGES
        for folder in (ROOT / package, *(ROOT / package).rglob("*"))
        if folder.is_dir() and folder.name != "__pycache__" and any(folder.glob("*.py"))
    )


def test_every_product_folder_with_modules_is_a_package() -> None:
    """grimp skips a folder without ``__init__.py``: its modules would be outside every contract."""
    missing = [
        str(folder.relative_to(ROOT))
        for folder in _product_folders()
        if not (folder / "__init__.py").exists()
    ]
    assert missing == []


# What a module in each package may not import: an upward import, or the product for sandbox/.
UPWARD = {
    "core": "import services.clock\n",
    "providers": "import services.clock\n",
    "services": "import routes.common\n",
    "routes": "import app\n",
    "mcp_tools": "import mcp_server\n",
    "cli": "import app\n",
    "sandbox": "import services.clock\n",
}


def test_the_contract_sees_a_bad_import_in_every_product_folder(product_copy: Path) -> None:
    """One upward import planted in each folder at once: each must be named in the report."""
    additions = {
        f"{relative.as_posix()}/probe_upward.py": UPWARD[relative.parts[0]]
        for relative in (folder.relative_to(ROOT) for folder in _product_folders())
    }
    result = lint_with_additions(product_copy, additions)
    unseen = [
        path
        for path in additions
        if f"{path.removesuffix('.py').replace('/', '.')} ->" not in result.stdout
    ]
    assert unseen == [], result.stdout


def test_the_contract_sees_an_import_cycle_in_every_product_folder(product_copy: Path) -> None:
    """In each package at once, its __init__ imports a new module that imports from the
    package: each new module must be named in a reported cycle."""
    additions: dict[str, str] = {}
    for relative in (folder.relative_to(ROOT) for folder in _product_folders()):
        package = relative.as_posix().replace("/", ".")
        additions[f"{relative.as_posix()}/__init__.py"] = f"import {package}.probe_cycle\n"
        additions[f"{relative.as_posix()}/probe_cycle.py"] = f"from {package} import probe_cycle\n"
    result = lint_with_additions(product_copy, additions)
    assert "An import cycle" in result.stdout, result.stdout
    unseen = [
        path
        for path in additions
        if path.endswith("probe_cycle.py")
        and path.removesuffix(".py").replace("/", ".") not in result.stdout
    ]
    assert unseen == [], result.stdout


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_settings_stands_on_the_ground_only() -> None:
    """settings.py is layer 0: it may use the standard library, dotenv and core, nothing else."""
    product = {*PACKAGES, *(name.removesuffix(".py") for name in SINGLE_FILE_MODULES)}
    imported = _imported_roots(ROOT / "settings.py")
    assert imported & product <= {"core"}
    assert imported - product <= {*sys.stdlib_module_names, "dotenv", "__future__"}


def test_no_product_or_bench_module_is_over_the_size_limit() -> None:
    modules = [ROOT / name for name in SINGLE_FILE_MODULES]
    for package in (*PACKAGES, "bench"):
        modules += sorted((ROOT / package).rglob("*.py"))
    too_long = {
        str(path.relative_to(ROOT)): lines
        for path in modules
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert too_long == {}


def test_the_mcp_server_lists_its_tools_before_loading_an_sdk_the_database_or_pandas() -> None:
    probe = textwrap.dedent(
        """
        import sys, anyio, mcp
        from mcp_server import build_server

        async def tools():
            async with mcp.Client(build_server()) as client:
                return await client.list_tools()

        listed = anyio.run(tools)
        heavy = ("plaid", "snaptrade_client", "sqlalchemy", "pandas", "boto3", "sandbox")
        print(len(listed.tools))
        print(sorted({m.split(".")[0] for m in sys.modules} & set(heavy)))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    tool_count, loaded = result.stdout.strip().splitlines()[-2:]
    assert int(tool_count) >= 7
    assert loaded == "[]"

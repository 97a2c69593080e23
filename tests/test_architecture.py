"""The house holds: four layers, imports only point down, no cycles, the emulator kept outside,
small modules, and a lazy start.

The layer contract lives in ``pyproject.toml`` ([tool.importlinter]) and is run here as
``make check`` runs it. The contract is also shown to fail: each kind of violation is
added to a copy of the product, and ``lint-imports`` must refuse it.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "providers", "services", "routes", "mcp_tools", "cli", "sandbox")
SINGLE_FILE_MODULES = (
    "app.py",
    "mcp_server.py",
    "settings.py",
    "plaid_loader.py",
    "snaptrade_loader.py",
    "snaptrade_broker_adapter.py",
)
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
    for name in (*SINGLE_FILE_MODULES, "pyproject.toml"):
        shutil.copy2(ROOT / name, root / name)
    return root


VIOLATIONS = {
    "a service imports an entry point": ("services/probe.py", "import routes.common\n"),
    "an adapter imports a service": ("providers/probe.py", "import services.clock\n"),
    "core imports an adapter": ("core/probe.py", "import providers.calls\n"),
    "a function-local upward import": (
        "services/probe.py",
        "def later():\n    import mcp_tools.boundary\n",
    ),
    "a service imports the emulator": ("services/probe.py", "from sandbox import demo\n"),
    "the emulator imports the product": ("sandbox/probe.py", "import services.clock\n"),
    "a service imports a provider SDK": ("services/probe.py", "import plaid\n"),
    "a route skips the services": ("routes/probe.py", "import providers.calls\n"),
    "a service imports a REPL face": ("services/probe.py", "import plaid_loader\n"),
    "two services import each other": (
        "services/probe.py",
        "import services.probe_twin\n",
        "services/probe_twin.py",
        "import services.probe\n",
    ),
}


@pytest.mark.parametrize("violation", sorted(VIOLATIONS))
def test_the_contract_refuses_each_kind_of_bad_import(product_copy: Path, violation: str) -> None:
    spec = VIOLATIONS[violation]
    added = [product_copy / path for path in spec[0::2]]
    try:
        for path, source in zip(added, spec[1::2], strict=True):
            path.write_text(source)
        result = lint_imports(product_copy)
    finally:
        for path in added:
            path.unlink(missing_ok=True)
    assert result.returncode != 0, f"{violation} was not caught:\n{result.stdout}"
    assert "BROKEN" in result.stdout


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


def test_no_product_module_is_over_the_size_limit() -> None:
    modules = [ROOT / name for name in SINGLE_FILE_MODULES]
    for package in PACKAGES:
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

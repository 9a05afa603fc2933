"""Test modules share helpers through support modules and conftest.py, never through each other.

A helper imported from another `test_*` module runs that module's imports wherever it is
used, and ties one tier's tests to another's files; it belongs in a `*_support.py` module
next to the tests that use it, or in a conftest.py when it is a fixture.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def imported_names(path: Path, root: Path) -> list[str]:
    """What `path` imports: each module, and each `from m import n` also as `m.n`."""
    package = list(path.relative_to(root.parent).parent.parts)
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package[: len(package) - node.level + 1] if node.level else []
            base = ".".join([*parts, *([node.module] if node.module else [])])
            found.append(base)
            found.extend(f"{base}.{alias.name}" for alias in node.names)
    return found


def imported_test_modules(path: Path, root: Path) -> list[str]:
    """The suite's own `test_*` modules that `path` imports."""
    return sorted(
        {
            name
            for name in imported_names(path, root)
            if name.rpartition(".")[2].startswith("test_")
            and (root.parent / Path(*name.split("."))).with_suffix(".py").is_file()
        }
    )


def offenders(root: Path) -> dict[str, list[str]]:
    """Each module of the suite at `root` that imports one of its test modules, and which."""
    found = {
        path.relative_to(root.parent).as_posix(): imported_test_modules(path, root)
        for path in sorted(root.rglob("*.py"))
    }
    return {module: names for module, names in found.items() if names}


def test_no_test_module_imports_another_test_module() -> None:
    assert offenders(TESTS) == {}, "move what they share to a *_support.py module or conftest.py"


def test_the_check_names_each_way_of_importing_a_test_module(tmp_path: Path) -> None:
    suite = tmp_path / "tests"
    files = {
        "__init__.py": "",
        "conftest.py": "from tests.integration.pipeline_support import until\n",
        "integration/__init__.py": "",
        "integration/pipeline_support.py": "def until() -> None: ...\n",
        "integration/test_relay.py": "def consume() -> None: ...\n",
        "integration/test_by_name.py": "from tests.integration.test_relay import consume\n",
        "integration/test_relative.py": "from .test_relay import consume\n",
        "integration/test_support_only.py": "from tests.integration import pipeline_support\n",
        "e2e/__init__.py": "",
        "e2e/test_module.py": "from tests.integration import test_relay\n",
        "e2e/test_plain.py": "import tests.integration.test_relay\n",
        "e2e/test_parent.py": "from ..integration.test_relay import consume\n",
    }
    for name, text in files.items():
        (suite / name).parent.mkdir(parents=True, exist_ok=True)
        (suite / name).write_text(text, encoding="utf-8")

    relay = ["tests.integration.test_relay"]
    assert offenders(suite) == {
        "tests/e2e/test_module.py": relay,
        "tests/e2e/test_parent.py": relay,
        "tests/e2e/test_plain.py": relay,
        "tests/integration/test_by_name.py": relay,
        "tests/integration/test_relative.py": relay,
    }

"""The rooms' import rules hold, and break when a forbidden import is added.

The rules live in pyproject.toml (`[tool.importlinter]`); `make test` runs
`lint-imports` on the repository. Here the same check runs on a copy of the packages,
once as they are and once with one forbidden import added to each kind of room.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "domain",
    "privacy",
    "casebook",
    "contract",
    "messaging",
    "relay",
    "consumers",
    "projections",
    "api",
)
COMPOSITION_ROOT = "entrypoints"


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packages and the contract's configuration, copied where a test may edit them."""
    tree = tmp_path_factory.mktemp("rooms")
    for package in (*PACKAGES, COMPOSITION_ROOT):
        shutil.copytree(ROOT / package, tree / package, ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def test_the_rooms_keep_their_import_rules(tree: Path) -> None:
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("domain/values.py", "casebook.settings"),  # the domain imports nothing of ours
        ("projections/sla/targets.py", "api.roles"),  # projections never import the API
        ("api/roles.py", "entrypoints.demo"),  # nothing imports the composition root
        ("casebook/errors.py", "relay.leadership"),  # infrastructure below the relay
    ],
)
def test_a_forbidden_import_breaks_the_contract(tree: Path, module: str, forbidden: str) -> None:
    path = tree / module
    original = path.read_text(encoding="utf-8")
    path.write_text(original + f"\nimport {forbidden}  # noqa\n", encoding="utf-8")
    try:
        result = lint_imports(tree)
    finally:
        path.write_text(original, encoding="utf-8")

    assert result.returncode == 1, result.stdout + result.stderr
    importer = module.removesuffix(".py").replace("/", ".")
    assert f"{importer} -> {forbidden}" in result.stdout, result.stdout


ROOMS = (*PACKAGES, COMPOSITION_ROOT)
LONGEST_MODULE = 430  # "about 400 lines"; the case aggregate holds one method per action
EXPLAINED_ABOVE = 300
# Three aggregates' commands, handlers and index rows, the notifications their commands
# leave to send, erasures of personal data, and the settings of every part; the outbound
# clients live in messaging/, data keys and sealing in privacy/.
WRITE_SIDE_AND_INFRASTRUCTURE_MAX = 3950


def modules() -> list[Path]:
    return [path for room in ROOMS for path in sorted((ROOT / room).rglob("*.py"))]


def lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_modules_stay_short_and_long_ones_say_why() -> None:
    sizes = {path.relative_to(ROOT): lines(path) for path in modules()}
    too_long = {str(path): size for path, size in sizes.items() if size > LONGEST_MODULE}
    unexplained = [
        str(path)
        for path, size in sizes.items()
        if size > EXPLAINED_ABOVE and "stays one module" not in docstring(ROOT / path)
    ]
    assert not too_long, too_long
    assert not unexplained, f"over {EXPLAINED_ABOVE} lines without saying why: {unexplained}"


def docstring(path: Path) -> str:
    return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""


def test_the_write_side_and_shared_infrastructure_stay_small() -> None:
    total = sum(lines(path) for path in (ROOT / "casebook").rglob("*.py"))
    assert total < WRITE_SIDE_AND_INFRASTRUCTURE_MAX, total

"""The README documents every rule the domain and the write side enforce."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import api.errors
import casebook.errors
import domain
from casebook.settings import Settings
from domain.errors import DomainError

README = Path(__file__).resolve().parents[2] / "README.md"


def domain_rules() -> set[str]:
    rules = set()
    modules = [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(domain.__path__, prefix="domain.")
    ]
    for module in [*modules, casebook.errors, api.errors]:
        for _, member in inspect.getmembers(module, inspect.isclass):
            if issubclass(member, DomainError) and member is not DomainError:
                rules.add(member.rule)
    return rules


def test_every_domain_rule_is_listed_in_the_readme() -> None:
    readme = README.read_text(encoding="utf-8")
    rules = domain_rules()
    assert len(rules) > 40
    missing = sorted(rule for rule in rules if f"`{rule}`" not in readme)
    assert missing == []


def configuration_table(readme: str) -> str:
    start = readme.index("## Configuration")
    return readme[start : readme.index("\n## ", start + 1)]


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    table = configuration_table(README.read_text(encoding="utf-8"))
    names = [f"CASEBOOK_{name.upper()}" for name in Settings.model_fields]
    missing = [name for name in names if f"`{name}`" not in table]
    assert len(names) > 20
    assert missing == []


def test_links_between_the_docs_lead_to_files_that_exist() -> None:
    root = README.parent
    pages = [README, *sorted((root / "docs").glob("*.md")), root / "bench" / "README.md"]
    broken = [
        f"{page.relative_to(root)} -> {target}"
        for page in pages
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8"))
        if not (page.parent / target).exists()
    ]
    assert broken == []

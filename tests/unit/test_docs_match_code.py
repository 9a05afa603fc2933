"""The README documents every rule the domain enforces."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import domain
from domain.errors import DomainError

README = Path(__file__).resolve().parents[2] / "README.md"


def domain_rules() -> set[str]:
    rules = set()
    for module_info in pkgutil.walk_packages(domain.__path__, prefix="domain."):
        module = importlib.import_module(module_info.name)
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

"""The README documents every rule the domain and the write side enforce."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import api.errors
import casebook.errors
import domain
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

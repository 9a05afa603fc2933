"""The docs say what the code does: every rule, every setting, links that lead somewhere."""

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
from tools import configuration_doc

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
POLICY = DOCS / "support-policy.md"

LINK = re.compile(r"\]\(([^()\s]+)\)")
POLICY_LINK = re.compile(r"\[[^\]]*\]\([^)]*support-policy\.md[^)]*\)")


def pages() -> list[Path]:
    """README, every page of the manual, and the README of each top-level folder."""
    folders = sorted(
        page
        for page in ROOT.glob("*/README.md")
        if not page.parent.name.startswith(".") and page.parent.name != "var"
    )
    return [README, *sorted(DOCS.rglob("*.md")), *folders]


def without_code_blocks(page: Path) -> str:
    """The page without its fenced code blocks, where `#` starts no heading."""
    return re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.M | re.S)


def prose(page: Path) -> str:
    """The page without code blocks or code spans, where `](...)` is no link."""
    return re.sub(r"`[^`\n]*`", "", without_code_blocks(page))


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the page's headings (`## A b` -> `a-b`, repeats -1, -2)."""
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", without_code_blocks(page), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        candidate, repeat = slug, 0
        while candidate in found:
            repeat += 1
            candidate = f"{slug}-{repeat}"
        found.add(candidate)
    return found


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


def test_every_domain_rule_is_listed_in_the_domain_rules_page() -> None:
    page = (DOCS / "domain-rules.md").read_text(encoding="utf-8")
    rules = domain_rules()
    assert len(rules) > 40
    missing = sorted(rule for rule in rules if f"`{rule}`" not in page)
    assert missing == []


def test_the_configuration_page_is_what_the_settings_generate() -> None:
    page = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert page == configuration_doc.render(), "run: python -m tools.configuration_doc"


def test_every_setting_is_in_the_configuration_table() -> None:
    page = configuration_doc.render()
    table = page[page.index("| variable |") : page.index("\n## ")]
    names = [f"CASEBOOK_{name.upper()}" for name in Settings.model_fields]
    missing = [name for name in names if f"`{name}`" not in table]
    assert len(names) > 20
    assert missing == []
    assert "| `KAFKA_BOOTSTRAP_SERVERS` |" in table  # the alias operators know


def test_the_readme_is_a_front_door_of_at_most_200_lines() -> None:
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 200


def test_links_lead_to_files_and_headings_inside_the_repository() -> None:
    broken = []
    for page in pages():
        for target in LINK.findall(prose(page)):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            inside = linked.is_relative_to(ROOT) and not path.startswith("/")
            if not inside or not linked.exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{page.relative_to(ROOT)} -> {target} (no such heading)")
    assert broken == []


def test_every_policy_section_reference_links_to_the_shipped_policy() -> None:
    assert POLICY.exists()
    unlinked = [
        str(page.relative_to(ROOT))
        for page in pages()
        if page != POLICY and "§" in POLICY_LINK.sub("", prose(page))
    ]
    assert unlinked == []

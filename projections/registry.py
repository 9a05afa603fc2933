"""Every projection by name (its consumer group), for the commands that need one built.

`casebook dlq replay` re-applies dead letters through the projection they belong to, and
the consume command starts one by name. A projection module adds its factory here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from casebook.settings import Settings

if TYPE_CHECKING:
    from consumers.projection import Projection


def _sla(settings: Settings) -> Projection:
    from projections.sla.policies import target_book
    from projections.sla.projection import SlaProjection

    return SlaProjection(target_book(settings))


def _audit(settings: Settings) -> Projection:
    from projections.audit.projection import AuditProjection

    return AuditProjection()


PROJECTIONS: dict[str, Callable[[Settings], Projection]] = {"sla": _sla, "audit": _audit}


class UnknownProjection(LookupError):
    """No projection is registered under that name; the message lists the known ones."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown projection"


def build(name: str, settings: Settings) -> Projection:
    """The projection registered as `name`, built from `settings`."""
    try:
        factory = PROJECTIONS[name]
    except KeyError:
        known = ", ".join(sorted(PROJECTIONS)) or "none"
        raise UnknownProjection(f"no projection named {name!r} (known: {known})") from None
    return factory(settings)

"""The event store's mapper, sealing personal fields on the way in and opening them on
the way out.

Each personal field (`privacy.fields`) of an event is stored as a `Sealed` value under
its stream's data key: a case's under its requester's key, an organisation's under its
own. The writer names each stream's scope before it saves (`seal_streams`); an event
with personal data and no prepared key is refused, never stored in clear. A value
whose key was erased reads as `ERASED` (a list as an empty list).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
    Transcoder,
    Transcoding,
)

from domain.cases import ServiceRequest
from domain.organisations import Organisation
from domain.values import ERASED
from privacy.envelope import Sealed, open_sealed, seal
from privacy.fields import personal_fields
from privacy.keyring import Keyring, Scope


class SealedAsDict(Transcoding):
    """A `Sealed` value as {"k": key id, "s": shape, "v": base64 ciphertext}."""

    type = Sealed
    name = "sealed"

    def encode(self, obj: Sealed) -> dict[str, str]:
        return {"k": str(obj.key_id), "s": obj.shape, "v": base64.b64encode(obj.blob).decode()}

    def decode(self, data: Any) -> Sealed:
        return Sealed(UUID(data["k"]), data["s"], base64.b64decode(data["v"]))


def scope_of(aggregate: object) -> Scope | None:
    """Whose key seals an aggregate's personal data; None when it holds none."""
    if isinstance(aggregate, ServiceRequest):
        return Scope(aggregate.organisation_id, aggregate.requester_id)
    if isinstance(aggregate, Organisation):
        return Scope(aggregate.id)
    return None


def holds_personal_data(aggregate: Any) -> bool:
    """True when an event about to be saved has a personal field to seal."""
    events: list[object] = list(aggregate.pending_events)
    return any(
        vars(event).get(name) is not None
        for event in events
        for name in personal_fields(type(event))
    )


class NoDataKey(RuntimeError):
    """An event with personal data was about to be stored without its stream's key."""


class SealingMapper(Mapper[UUID]):
    """eventsourcing's mapper, with personal fields sealed; without a keyring (a unit
    test's in-memory store) values are stored as they are and sealed ones refused."""

    def __init__(self, transcoder: Transcoder, keyring: Keyring | None = None) -> None:
        super().__init__(transcoder)
        self.keyring = keyring
        self._stream_keys: dict[UUID, tuple[UUID, bytes]] = {}

    def seal_streams(self, scopes: Mapping[UUID, Scope]) -> None:
        """Fetch (or make) the live key of each stream about to be written."""
        if self.keyring is None:
            return
        keys = self.keyring.live_keys(scopes.values())
        self._stream_keys = {stream: keys[scope] for stream, scope in scopes.items()}

    def sealing_keys(self) -> list[UUID]:
        """The ids of the keys the coming save seals with (its check that they live)."""
        return sorted({key_id for key_id, _ in self._stream_keys.values()})

    def forget_keys(self) -> None:
        """A save failed, perhaps on an erased key: fetch keys afresh next time."""
        self._stream_keys = {}
        if self.keyring is not None:
            self.keyring.forget()

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        names = personal_fields(type(domain_event))
        state = vars(domain_event)
        present = [n for n in names if state.get(n) is not None]
        if not present or self.keyring is None:
            return super().to_stored_event(domain_event)
        found = self._stream_keys.get(domain_event.originator_id)
        if found is None:
            raise NoDataKey(
                f"no data key prepared for {domain_event.originator_id}: its personal data "
                "would be stored in clear"
            )
        key_id, data_key = found
        sealed = object.__new__(type(domain_event))
        object.__setattr__(
            sealed,
            "__dict__",
            {**state, **{n: seal(key_id, data_key, state[n]) for n in present}},
        )
        return super().to_stored_event(sealed)

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        event = super().to_domain_event(stored_event)
        state = vars(event)
        for name in personal_fields(type(event)):
            value = state.get(name)
            if isinstance(value, Sealed):
                state[name] = self._open(value, stored_event)
        return event

    def _open(self, sealed: Sealed, stored_event: StoredEvent) -> Any:
        if self.keyring is None:
            raise MapperDeserialisationError(
                f"event {stored_event.originator_id} v{stored_event.originator_version} holds "
                "sealed personal data and this store has no keyring"
            )
        data_key = self.keyring.key(sealed.key_id)
        if data_key is None:
            return [] if sealed.shape == "list" else ERASED
        return open_sealed(sealed, data_key)

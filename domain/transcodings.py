"""How domain values that JSON cannot carry natively are stored with events.

Register these on the application's transcoder (eventsourcing's
`Application.register_transcodings`). Enum values need none: they are `str`
subclasses and travel as plain strings; tuples travel as JSON lists. Both are
normalised back when aggregates apply events.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding

from domain.values import Actor


class ActorAsDict(Transcoding):
    """An `Actor` as {"principal_id", "role", "channel"}."""

    type = Actor
    name = "actor"

    def encode(self, obj: Actor) -> dict[str, str]:
        return {"principal_id": obj.principal_id, "role": obj.role, "channel": obj.channel}

    def decode(self, data: Any) -> Actor:
        return Actor(data["principal_id"], data["role"], data["channel"])


def register_domain_transcodings(transcoder: JSONTranscoder) -> None:
    """Register every domain transcoding on a JSON transcoder."""
    transcoder.register(ActorAsDict())

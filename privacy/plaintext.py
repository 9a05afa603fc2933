"""Personal fields stored in clear, before sealing existed (migration 0026): an erasure
blanks them in place, the one rewrite of stored events casebook makes, because no key
can be destroyed for them.
"""

from __future__ import annotations

from uuid import UUID

import psycopg
from eventsourcing.persistence import Transcoder
from eventsourcing.utils import resolve_topic
from psycopg.rows import DictRow

from domain.values import ERASED
from privacy.envelope import Sealed
from privacy.fields import personal_fields


def redact_plaintext(
    conn: psycopg.Connection[DictRow], transcoder: Transcoder, streams: list[UUID]
) -> int:
    """Blank the clear personal fields of the streams' events (in the caller's
    transaction); how many events were rewritten."""
    rows = conn.execute(  # events with a sealed field were written after sealing began
        "SELECT originator_id, originator_version, topic, state FROM casebook_events"
        " WHERE originator_id = ANY(%s::uuid[])"
        " AND position('\"_type_\":\"sealed\"' in convert_from(state, 'UTF8')) = 0",
        (streams,),
    ).fetchall()
    rewritten = 0
    for row in rows:
        names = personal_fields(resolve_topic(row["topic"]))
        if not names:
            continue
        state = transcoder.decode(bytes(row["state"]))
        clear = [n for n in names if state.get(n) is not None and not isinstance(state[n], Sealed)]
        if not clear:
            continue
        for name in clear:
            state[name] = [] if isinstance(state[name], list | tuple) else ERASED
        conn.execute(
            "UPDATE casebook_events SET state = %s WHERE originator_id = %s"
            " AND originator_version = %s",
            (transcoder.encode(state), row["originator_id"], row["originator_version"]),
        )
        rewritten += 1
    return rewritten

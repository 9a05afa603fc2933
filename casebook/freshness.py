"""Bring cached aggregates up to date with what other processes stored, in one query.

The write path keeps aggregates in memory between commands. When other processes write
too (several API workers), the cached copies fall behind and a save would fail on the
version constraint; applying the newer stored events to the cached copies first, for a
whole batch at once, avoids that at the cost of one query per batch.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

_NEWER_EVENTS = (
    "SELECT e.originator_id, e.originator_version, e.topic, e.state"
    " FROM unnest(%s::uuid[], %s::bigint[]) AS cached(id, version)"
    " JOIN {table} AS e"
    " ON e.originator_id = cached.id AND e.originator_version > cached.version"
    " ORDER BY e.originator_id, e.originator_version"
)


def fast_forward(store: Any, aggregate_ids: list[UUID]) -> int:
    """Apply newer stored events to the cached aggregates among `aggregate_ids`.

    Returns how many events were applied. Aggregates not in the cache are left alone:
    they are loaded whole when needed.
    """
    cache = store.repository.cache
    if cache is None:
        return 0
    cached: dict[UUID, Any] = {}
    for aggregate_id in aggregate_ids:
        try:
            cached[aggregate_id] = cache.get(aggregate_id)
        except KeyError:
            continue
    if not cached:
        return 0
    recorder = store.recorder
    query = _NEWER_EVENTS.format(table=recorder.events_table_name)
    with recorder.datastore.get_connection() as conn:
        rows = conn.execute(
            query, (list(cached), [aggregate.version for aggregate in cached.values()])
        ).fetchall()
    for row in rows:
        stored = StoredEvent(
            originator_id=row["originator_id"],
            originator_version=row["originator_version"],
            topic=row["topic"],
            state=bytes(row["state"]),
        )
        store.mapper.to_domain_event(stored).mutate(cached[row["originator_id"]])
    return len(rows)

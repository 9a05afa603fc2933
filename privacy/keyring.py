"""Data keys in PostgreSQL (`casebook_data_keys`), wrapped under the master key.

One live key per scope: an organisation's own (its profile's contacts) or one of its
data subjects' (the requester of its cases). Erasure destroys the wrapped keys of a
scope (`destroy`); a later write to that scope gets a new key, so what is written after
an erasure stays readable and what was written before never again is.

The writer remembers its scopes' live keys; every save checks, under the event table's
lock and with the keys' rows locked against an erasure, that those it sealed with are
still live, and a save that finds one erased is refused as a conflict and retried with
fresh keys: a key erased a moment ago is never used for new data. Reads cache unwrapped
keys for `cache_seconds` (a key erased by another process may still open values there
that long; docs/privacy.md) and remember erased keys for good.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import psycopg
from psycopg.rows import DictRow

from privacy.envelope import KeyUnusable, fingerprint, new_key, unwrap, wrap


@dataclass(frozen=True)
class Scope:
    """Whose personal data a key seals: an organisation's own, or one data subject's."""

    organisation_id: UUID
    subject: str | None = None  # a principal id; None: the organisation's own


_LIVE = (
    "SELECT key_id, organisation_id, subject, wrapped_key, master_key_fingerprint"
    " FROM casebook_data_keys WHERE erased_at IS NULL AND (organisation_id, coalesce(subject, ''))"
    " IN (SELECT * FROM unnest(%s::uuid[], %s::text[]))"
)
_CREATE = (
    "INSERT INTO casebook_data_keys (key_id, organisation_id, subject, wrapped_key,"
    " master_key_fingerprint) SELECT * FROM unnest(%s::uuid[], %s::uuid[], %s::text[],"
    " %s::bytea[], %s::text[]) ON CONFLICT (organisation_id, coalesce(subject, ''))"
    " WHERE erased_at IS NULL DO NOTHING"
)
_BY_ID = (
    "SELECT key_id, wrapped_key, master_key_fingerprint FROM casebook_data_keys"
    " WHERE key_id = ANY(%s::uuid[])"
)


class Keyring:
    """Finds, makes and opens data keys; `connection()` lends a pooled connection."""

    def __init__(
        self,
        connection: Callable[[], AbstractContextManager[psycopg.Connection[DictRow]]],
        master_key: bytes,
        *,
        cache_seconds: float = 2.0,
    ) -> None:
        self._connection = connection
        self._master = master_key
        self._fingerprint = fingerprint(master_key)
        self._cache_seconds = cache_seconds
        self._opened: dict[UUID, tuple[bytes | None, float]] = {}
        self._live: dict[Scope, tuple[UUID, bytes]] = {}

    def live_keys(self, scopes: Iterable[Scope]) -> dict[Scope, tuple[UUID, bytes]]:
        """Each scope's live key (id, key), made when it has none; remembered for the
        writer, whose save checks them still live (`casebook_expect_live_keys`) and
        calls `forget` when one is not."""
        wanted = set(scopes)
        unknown = sorted(
            wanted - self._live.keys(), key=lambda s: (s.organisation_id, s.subject or "")
        )
        if unknown:
            found = self._select_live(unknown)
            missing = [s for s in unknown if s not in found]
            if missing:
                self._create(missing)
                found |= self._select_live(missing)
            self._live |= found
        return {scope: self._live[scope] for scope in wanted}

    def key(self, key_id: UUID) -> bytes | None:
        """The data key, or None when it was erased."""
        cached = self._opened.get(key_id)
        if cached is not None and (
            cached[0] is None or time.monotonic() - cached[1] < self._cache_seconds
        ):
            return cached[0]
        return self.keys([key_id])[key_id]

    def keys(self, key_ids: Iterable[UUID]) -> dict[UUID, bytes | None]:
        """Several data keys in one query; None for each erased one."""
        ids = sorted(set(key_ids))
        with self._connection() as conn:
            rows = conn.execute(_BY_ID, (ids,)).fetchall()
        now = time.monotonic()
        opened: dict[UUID, bytes | None] = {}
        for row in rows:
            key_id, wrapped = row["key_id"], row["wrapped_key"]
            opened[key_id] = None if wrapped is None else self._unwrap(row)
            self._opened[key_id] = (opened[key_id], now)
        unknown = [k for k in ids if k not in opened]
        if unknown:
            raise KeyUnusable(f"data key {unknown[0]} is not in casebook_data_keys")
        return opened

    def forget(self) -> None:
        """Drop cached keys (some were erased)."""
        self._opened.clear()
        self._live.clear()

    def _select_live(self, scopes: list[Scope]) -> dict[Scope, tuple[UUID, bytes]]:
        params = ([s.organisation_id for s in scopes], [s.subject or "" for s in scopes])
        with self._connection() as conn:
            rows = conn.execute(_LIVE, params).fetchall()
        found = {}
        for row in rows:
            found[Scope(row["organisation_id"], row["subject"])] = (
                row["key_id"],
                self._unwrap(row),
            )
        return found

    def _create(self, scopes: list[Scope]) -> None:
        ids = [uuid4() for _ in scopes]
        wrapped = [wrap(self._master, key_id, new_key()) for key_id in ids]
        with self._connection() as conn, conn.transaction():
            conn.execute(
                _CREATE,
                (
                    ids,
                    [s.organisation_id for s in scopes],
                    [s.subject for s in scopes],
                    wrapped,
                    [self._fingerprint] * len(scopes),
                ),
            )

    def _unwrap(self, row: DictRow) -> bytes:
        key_id, master = row["key_id"], row["master_key_fingerprint"]
        if master != self._fingerprint:
            raise KeyUnusable(
                f"data key {key_id} was wrapped by master key {master[:12]}..., the configured "
                f"one is {self._fingerprint[:12]}... (CASEBOOK_PRIVACY_MASTER_KEY_FILE)"
            )
        return unwrap(self._master, key_id, bytes(row["wrapped_key"]))


def destroy_keys(
    conn: Any, erasure_id: int, organisation_id: UUID | None, subject: str | None
) -> int:
    """Destroy the live and earlier keys of a scope (in the caller's transaction); how many."""
    cursor = conn.execute(
        "UPDATE casebook_data_keys SET wrapped_key = NULL, erased_at = now(), erasure_id = %s"
        " WHERE erased_at IS NULL AND (%s::uuid IS NULL OR organisation_id = %s)"
        " AND (%s::text IS NULL OR subject = %s)",
        (erasure_id, organisation_id, organisation_id, subject, subject),
    )
    return int(cursor.rowcount)

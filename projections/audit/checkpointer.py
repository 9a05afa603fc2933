"""Sign checkpoints of the audit log periodically, and read them back.

A checkpoint covers every entry appended since the previous one. entry_id comes from a
sequence, so an entry with a lower id may still be uncommitted when a higher one is
visible: the bound is taken under a SHARE lock on the entries table, which waits for
every transaction inserting entries to finish (and briefly holds new ones back), so no
entry can later appear at or below it. A checkpoint also signs the access log's head
(read once per round, so a busy access log cannot keep a round signing), and is made
when entries were appended or that head moved. The checkpoint and its outbox row are
written in one transaction; an advisory lock keeps two checkpointers from numbering alike.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from psycopg.types.json import Jsonb

from casebook.supervision import report_lag, report_trouble
from projections.audit.chain import GENESIS
from projections.audit.checkpoint import EVENT_TYPE, Checkpoint, public_pem, sign
from projections.audit.merkle import MerkleTree

log = structlog.get_logger("casebook.audit.checkpoints")
OUTBOX = "casebook_audit_checkpoint_outbox"
OUTBOX_SUBJECT = "audit-log"  # one key: every checkpoint on one partition, in order
MAX_ENTRIES = 100_000  # per checkpoint, so a backlog is signed in bounded transactions
_COLUMNS = (
    "number, after_entry_id, upto_entry_id, count, merkle_root, prev_digest, created_at, "
    "key_fingerprint, digest, signature, access_seq, access_hash"
)


def _now() -> datetime:
    return datetime.now(UTC)


def committed_bound(conn: psycopg.Connection[Any]) -> int:
    """The highest entry_id below which no entry can still appear (0: none yet)."""
    with conn.transaction():
        conn.execute("LOCK TABLE casebook_audit_entries IN SHARE MODE")
        row = conn.execute("SELECT coalesce(max(entry_id), 0) FROM casebook_audit_entries")
        found = row.fetchone()
    return int(found[0]) if found else 0


def access_head(conn: psycopg.Connection[Any]) -> tuple[int, str]:
    """The access log's head (seq, hash): (0, genesis) before its first record."""
    row = conn.execute("SELECT seq, hash FROM casebook_audit_access_head").fetchone()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS)


def checkpoint_now(
    conn: psycopg.Connection[Any],
    key: Ed25519PrivateKey,
    *,
    clock: Callable[[], datetime] = _now,
    max_entries: int = MAX_ENTRIES,
) -> list[Checkpoint]:
    """Sign checkpoints over every committed entry not yet covered; the new ones."""
    bound = committed_bound(conn)
    head = access_head(conn)
    made: list[Checkpoint] = []
    while True:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('casebook:audit-checkpoints'))")
            made_one = _checkpoint_once(conn, key, (bound, head), clock(), max_entries)
        if made_one is None:
            return made
        made.append(made_one)


def _checkpoint_once(
    conn: psycopg.Connection[Any],
    key: Ed25519PrivateKey,
    bounds: tuple[int, tuple[int, str]],
    now: datetime,
    max_entries: int,
) -> Checkpoint | None:
    bound, head = bounds
    last = latest(conn)
    number, after, prev = (last.number, last.upto, last.digest) if last else (0, 0, GENESIS)
    rows = conn.execute(
        "SELECT entry_id, hash FROM casebook_audit_entries "
        "WHERE entry_id > %s AND entry_id <= %s ORDER BY entry_id LIMIT %s",
        (after, bound, max_entries),
    ).fetchall()
    signed_head = (last.access_seq, last.access_hash) if last else (None, None)
    head_moved = signed_head != head and not (head[0] == 0 and signed_head[0] is None)
    if not rows and not head_moved:
        return None
    tree = MerkleTree.of_entries([hash_ for _, hash_ in rows])
    checkpoint = sign(
        key,
        number=number + 1,
        after=after,
        upto=int(rows[-1][0]) if rows else after,
        count=len(rows),
        merkle_root=tree.root,
        prev_digest=prev,
        created_at=now,
        access_head=head,
    )
    pem = public_pem(key.public_key())
    conn.execute(
        f"INSERT INTO casebook_audit_checkpoints ({_COLUMNS}, public_key) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            checkpoint.number,
            checkpoint.after,
            checkpoint.upto,
            checkpoint.count,
            checkpoint.merkle_root,
            checkpoint.prev_digest,
            datetime.fromisoformat(checkpoint.created_at),
            checkpoint.key_fingerprint,
            checkpoint.digest,
            checkpoint.signature,
            checkpoint.access_seq,
            checkpoint.access_hash,
            pem,
        ),
    )
    # The next of the key's sequence (the checkpoint's number until a rebuilt log starts a
    # new series: the outbox stays live, so its numbering carries on), under the lock above.
    conn.execute(
        f"INSERT INTO {OUTBOX} (event_id, type, subject, time, payload, sequence) "
        f"SELECT %s, %s, %s, %s, %s, coalesce(max(sequence), 0) + 1 FROM {OUTBOX} "
        "WHERE subject = %s",
        (
            event_id(checkpoint),
            EVENT_TYPE,
            OUTBOX_SUBJECT,
            datetime.fromisoformat(checkpoint.created_at),
            Jsonb({**checkpoint.as_json(), "public_key": pem}),
            OUTBOX_SUBJECT,
        ),
    )
    log.info(
        "audit.checkpoint.signed",
        number=checkpoint.number,
        upto=checkpoint.upto,
        count=checkpoint.count,
    )
    return checkpoint


def event_id(checkpoint: Checkpoint) -> str:
    """`checkpoint:<number>:<digest prefix>`: stable per checkpoint, and distinct from a
    checkpoint of the same number signed over a rebuilt log."""
    return f"checkpoint:{checkpoint.number}:{checkpoint.digest[:16]}"


def _from_row(row: tuple[Any, ...]) -> Checkpoint:
    number, after, upto, count, root, prev, created, fingerprint, digest, signature = row[:10]
    access_seq, access_hash = row[10:12]
    return Checkpoint(
        number=number,
        after=after,
        upto=upto,
        count=count,
        merkle_root=root,
        prev_digest=prev,
        created_at=created.astimezone(UTC).isoformat(timespec="microseconds"),
        key_fingerprint=fingerprint,
        digest=digest,
        signature=signature,
        access_seq=access_seq,
        access_hash=access_hash,
    )


def latest(conn: psycopg.Connection[Any]) -> Checkpoint | None:
    """The newest checkpoint, or None before the first."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM casebook_audit_checkpoints ORDER BY number DESC LIMIT 1"
    ).fetchone()
    return _from_row(row) if row else None


def covering(conn: psycopg.Connection[Any], entry_ids: list[int]) -> list[Checkpoint]:
    """The checkpoints that cover any of `entry_ids`, by number."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM casebook_audit_checkpoints c WHERE EXISTS ("
        "SELECT 1 FROM unnest(%s::bigint[]) AS e(id) "
        "WHERE e.id > c.after_entry_id AND e.id <= c.upto_entry_id) ORDER BY number",
        (entry_ids,),
    ).fetchall()
    return [_from_row(row) for row in rows]


def signed_access_heads(conn: psycopg.Connection[Any]) -> list[tuple[Checkpoint, str, list[str]]]:
    """Each checkpoint that signed the access log's head (format 2), by number, with its
    public key's PEM and the hashes the access log now holds at that head's seq."""
    rows = conn.execute(
        f"SELECT {', '.join(f'c.{c.strip()}' for c in _COLUMNS.split(','))}, c.public_key, "
        "coalesce((SELECT array_agg(a.hash ORDER BY a.access_id) FROM casebook_audit_access a "
        "WHERE a.seq = c.access_seq), '{}') FROM casebook_audit_checkpoints c "
        "WHERE c.access_seq > 0 ORDER BY c.number"
    ).fetchall()
    return [(_from_row(row), row[12], list(row[13])) for row in rows]


def public_keys(conn: psycopg.Connection[Any], fingerprints: set[str]) -> dict[str, str]:
    """PEM of each key fingerprint (the key that signed those checkpoints)."""
    rows = conn.execute(
        "SELECT DISTINCT key_fingerprint, public_key FROM casebook_audit_checkpoints "
        "WHERE key_fingerprint = ANY(%s)",
        (sorted(fingerprints),),
    ).fetchall()
    return dict(rows)


def covered_hashes(conn: psycopg.Connection[Any], checkpoint: Checkpoint) -> list[tuple[int, str]]:
    """(entry_id, hash) of the entries a checkpoint covers, in entry_id order."""
    rows = conn.execute(
        "SELECT entry_id, hash FROM casebook_audit_entries "
        "WHERE entry_id > %s AND entry_id <= %s ORDER BY entry_id",
        (checkpoint.after, checkpoint.upto),
    ).fetchall()
    return [(int(entry_id), hash_) for entry_id, hash_ in rows]


class Checkpointer:
    """Signs a checkpoint every `seconds` when new entries exist, until stopped."""

    def __init__(self, url: str, key: Ed25519PrivateKey, *, seconds: float) -> None:
        self._url = url
        self._key = key
        self._seconds = seconds
        self.signed = 0

    def run(self, stop: threading.Event) -> None:
        backoff = self._seconds
        while not stop.wait(backoff):
            try:
                with psycopg.connect(self._url, autocommit=True) as conn:
                    self.signed += len(checkpoint_now(conn, self._key))
                backoff = self._seconds
                report_lag(0)
            except psycopg.OperationalError as error:
                backoff = min(max(backoff * 2, 1.0), 60.0)
                log.warning("audit.checkpoint.failed", error=str(error), retry_in=backoff)
                report_trouble(error)

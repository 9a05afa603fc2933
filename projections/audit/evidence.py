"""Export an evidence bundle of a case or an organisation over a period (format: bundle.py).

A case's bundle holds its case and SLA chains; an organisation's, its own chain and the
case and SLA chains of its cases. Of each chain it holds the entries that happened
(occurred_at) in [since, until) and every entry between them, so each segment is
contiguous and links to the entry before it (its start link) and names its last entry
(seq and hash). Entries the newest checkpoint does not cover yet are listed as uncovered
(`casebook audit checkpoint` signs one first if wanted); the manifest's signature, made
with the audit signing key as the last member is written, vouches for them and for the
rest. All of it is read in one REPEATABLE READ snapshot.

An export streams: what it will hold, and whether the log still matches the checkpoints
covering it, is read before the first byte; then the entries are read through a
server-side cursor and written as they come, and the manifest after them. Memory grows
with the number of chains and entry ids and with the covering checkpoints' trees, never
with the entries themselves or their proofs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from psycopg.rows import dict_row

from domain.errors import DomainError
from projections.audit import checkpointer
from projections.audit.bundle import ENTRIES, FORMAT, MANIFEST, entry_line
from projections.audit.bundle_signature import SIGNATURE, signature_json
from projections.audit.bundle_stream import batched, json_pieces, zip_stream
from projections.audit.chain import GENESIS
from projections.audit.checkpoint import Checkpoint, fingerprint, public_pem
from projections.audit.evidence_queries import entries_query, entry_ids, starts
from projections.audit.projection import ENTRY_COLUMNS
from projections.audit.proofs import CheckpointTree, Proofs


class EvidenceUnavailable(DomainError):
    """The audit log no longer matches a signed checkpoint that covers the entries asked for."""

    rule = "audit-log-matches-checkpoints"


class EvidenceCannotBeSigned(DomainError):
    """A bundle's manifest is signed with the audit signing key, which this process lacks."""

    rule = "evidence-is-signed"


class EvidenceRequestInvalid(DomainError):
    """A bundle's period must be ordered and carry UTC offsets."""

    rule = "evidence-period-is-valid"

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class EvidenceRequest:
    """What an auditor asked for: one case or one organisation, over [since, until)."""

    case_id: str | None = None
    organisation_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        def instant(at: datetime | None) -> str | None:
            return at.astimezone(UTC).isoformat(timespec="microseconds") if at else None

        return {
            "case_id": self.case_id,
            "organisation_id": self.organisation_id,
            "since": instant(self.since),
            "until": instant(self.until),
        }


@dataclass(frozen=True)
class Export:
    """A bundle's bytes and what it holds."""

    data: bytes
    entries: int
    chains: int
    checkpoints: int
    uncovered: int


def export_bundle(
    conn: psycopg.Connection[Any],
    request: EvidenceRequest,
    *,
    now: datetime,
    key: Ed25519PrivateKey,
) -> Export:
    """The bundle for `request` in one piece, signed with `key` (small bundles, tests);
    see `exporting`."""
    with exporting(conn, request, now=now) as bundle:
        data = b"".join(bundle.chunks(key))
    return Export(data, bundle.entries, bundle.chains, bundle.checkpoints, bundle.uncovered)


@contextmanager
def exporting(
    conn: psycopg.Connection[Any], request: EvidenceRequest, *, now: datetime
) -> Iterator[BundleExport]:
    """The bundle for `request`, read from one snapshot of the log that stays open in the
    `with` block, where its bytes are taken. Refuses (EvidenceUnavailable) on entry."""
    if (request.case_id is None) == (request.organisation_id is None):
        raise ValueError("an evidence bundle is of one case or one organisation")
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield BundleExport(conn, request, now)


class BundleExport:
    """One bundle being exported: its counts (`chains` once its bytes are taken)."""

    def __init__(
        self, conn: psycopg.Connection[Any], request: EvidenceRequest, now: datetime
    ) -> None:
        self._conn = conn
        self._request = request
        self._now = now
        self._ids = entry_ids(conn, request)
        covering = checkpointer.covering(conn, list(self._ids))
        self._proofs = Proofs(_checked_trees(conn, covering))
        self._newest = checkpointer.latest(conn)
        included = [*covering, *([self._newest] if self._newest else [])]
        self._included = {c.number: c for c in included}
        fingerprints = {c.key_fingerprint for c in self._included.values()}
        self._keys = checkpointer.public_keys(conn, fingerprints)
        self.entries = len(self._ids)
        self.checkpoints = len(self._included)
        self.uncovered = sum(1 for i in self._ids if not self._proofs.covers(i))
        self.chains = 0
        self._segments: dict[tuple[str, str], list[Any]] = {}  # first, last seq, count, hash
        self._digest = hashlib.sha256()

    def chunks(self, key: Ed25519PrivateKey) -> Iterator[bytes]:
        """The zip's bytes: entries.jsonl as the entries are read, then manifest.json, then
        signature.json (the manifest's, by `key`)."""
        manifest = hashlib.sha256()

        def manifest_pieces() -> Iterator[bytes]:
            for piece in batched(self._manifest(key)):
                manifest.update(piece)
                yield piece

        def signature() -> Iterator[bytes]:  # read once manifest.json is written
            yield signature_json(manifest.hexdigest(), key)

        yield from zip_stream(
            [
                (ENTRIES, batched(self._entry_lines())),
                (MANIFEST, manifest_pieces()),
                (SIGNATURE, signature()),
            ]
        )

    def _entry_lines(self) -> Iterator[bytes]:
        query, params = entries_query(self._request, f"e.entry_id, {_ENTRY_FIELDS}")
        with self._conn.cursor(name="evidence_entries", row_factory=dict_row) as cursor:
            cursor.itersize = 2000
            read = 0
            for entry in cursor.execute(query, params):
                # One snapshot: this read sees exactly the entries counted before it.
                if read == len(self._ids) or int(entry["entry_id"]) != self._ids[read]:
                    raise RuntimeError("the audit log changed within one snapshot")
                read += 1
                line = entry_line(entry) + b"\n"
                self._digest.update(line)
                self._add_to_segment(entry)
                yield line
        if read != len(self._ids):
            raise RuntimeError("the audit log changed within one snapshot")
        self.chains = len(self._segments)

    def _add_to_segment(self, entry: dict[str, Any]) -> None:
        chain, seq = (entry["stream"], str(entry["subject"])), int(entry["seq"])
        segment = self._segments.get(chain)
        if segment is None:
            self._segments[chain] = [seq, seq, 1, entry["hash"]]
        else:
            segment[1:] = seq, segment[2] + 1, entry["hash"]

    def _manifest(self, key: Ed25519PrivateKey) -> Iterator[str]:
        newest, ids, proofs = self._newest, self._ids, self._proofs
        signer = fingerprint(key.public_key())
        keys = self._keys | {signer: public_pem(key.public_key())}
        manifest = {
            "format": FORMAT,
            "signed_by": signer,
            "request": self._request.as_json(),
            "exported_at": self._now.astimezone(UTC).isoformat(timespec="microseconds"),
            "entries": {
                "file": ENTRIES,
                "sha256": self._digest.hexdigest(),
                "count": len(ids),
            },
            "chains": self._chains(),
            "proofs": (proof for i in ids if (proof := proofs.of(i)) is not None),
            "covered_upto": newest.upto if newest else 0,
            "uncovered": (i for i in ids if not proofs.covers(i)),
            "uncovered_means": UNCOVERED_MEANS,
            "checkpoints": [c.as_json() for _, c in sorted(self._included.items())],
            "public_keys": [{"fingerprint": f, "pem": pem} for f, pem in sorted(keys.items())],
        }
        yield from json_pieces(manifest)
        yield "\n"

    def _chains(self) -> Iterator[dict[str, Any]]:
        first_links = starts(self._conn, self._segments)
        for (stream, subject), (first, last, count, last_hash) in self._segments.items():
            yield {
                "stream": stream,
                "subject": subject,
                "start": {
                    "seq": first - 1,
                    "hash": GENESIS if first == 1 else first_links.get((stream, subject), ""),
                },
                "first_seq": first,
                "last_seq": last,
                "last_hash": last_hash,
                "count": count,
            }


UNCOVERED_MEANS = "appended after the newest checkpoint: links checked, not yet signed"
_ENTRY_FIELDS = ", ".join(f"e.{c.strip()}" for c in ENTRY_COLUMNS.split(","))


def _checked_trees(
    conn: psycopg.Connection[Any], covering: list[Checkpoint]
) -> list[CheckpointTree]:
    """The tree of each covering checkpoint, refused when the log no longer matches it."""
    trees = []
    for checkpoint in covering:
        tree = CheckpointTree(checkpoint, checkpointer.covered_hashes(conn, checkpoint))
        if not tree.matches:
            raise EvidenceUnavailable(
                f"the audit log no longer matches signed checkpoint {checkpoint.number} "
                f"(entry ids {checkpoint.after + 1}-{checkpoint.upto}): entries were changed, "
                "removed or added after it was signed; run `casebook audit verify`"
            )
        trees.append(tree)
    return trees

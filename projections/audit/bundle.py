"""Evidence bundles: the file format and its offline verification (no database).

Pure. A bundle is a zip of exactly three files: `entries.jsonl` (one audit entry per
line, its columns as JSON, in chain order), `manifest.json` (what was asked, when it was
exported, the SHA-256 of entries.jsonl, each chain segment's start link and end, each
entry's covering checkpoint and Merkle inclusion proof, the covering checkpoints (signed)
and the newest checkpoint at export time, the key that signed the manifest and the public
keys) and `signature.json`, the manifest's signature (`bundle_signature`). Entries
appended after the newest checkpoint are listed as `uncovered`: their links are checked,
and the manifest's signature vouches for them. Format 1 (an unsigned manifest) is refused.
`evidence` writes bundles piece by piece (`bundle_stream`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from projections.audit import bundle_signature
from projections.audit.bundle_files import (
    ENTRIES,
    FORMAT,
    MANIFEST,
    BundleInvalid,
    Members,
    read_zip,
)
from projections.audit.chain import GENESIS, canonical, first_break
from projections.audit.checkpoint import Checkpoint, fingerprint, load_public_pem, problem
from projections.audit.merkle import leaf_hash, root_from_proof

__all__ = [
    "ENTRIES",
    "FORMAT",
    "MANIFEST",
    "BundleInvalid",
    "Verified",
    "entry_line",
    "verify_bundle",
]


@dataclass(frozen=True)
class Verified:
    """What a bundle that verifies holds."""

    entries: int
    chains: int
    checkpoints: int
    uncovered: int
    key_fingerprints: tuple[str, ...]

    def describe(self) -> str:
        keys = ", ".join(f[:16] for f in self.key_fingerprints) or "none"
        return (
            f"OK: {self.entries} entries in {self.chains} chains, hashes and links intact; "
            f"{self.entries - self.uncovered} covered by {self.checkpoints} signed "
            f"checkpoint(s) (key {keys}), {self.uncovered} not yet covered by a checkpoint"
        )


def entry_line(entry: Mapping[str, Any]) -> bytes:
    """One line of entries.jsonl: the entry's columns as its hash saw them."""
    plain = json.loads(canonical(entry))
    plain |= {"entry_id": int(entry["entry_id"]), "hash": entry["hash"]}
    return json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def verify_bundle(data: bytes, expected_key: Ed25519PublicKey | None = None) -> Verified:
    """Check everything a bundle claims; raise BundleInvalid naming the first problem."""
    members = read_zip(data)
    try:
        keys = _check_keys(members.manifest["public_keys"], expected_key)
        _check_signature(members, keys)
        return _verify(members.entries, members.manifest, keys)
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, BundleInvalid):
            raise
        raise BundleInvalid(f"{MANIFEST} is malformed ({error!r})") from None


def _check_signature(members: Members, keys: dict[str, Ed25519PublicKey]) -> None:
    """The manifest is the one its signature covers, signed by the key it names."""
    try:
        document = bundle_signature.parse(members.signature)
    except ValueError as error:
        raise BundleInvalid(str(error)) from None
    digest = hashlib.sha256(members.manifest_bytes).hexdigest()
    why = bundle_signature.problem(document, digest, keys, members.manifest.get("signed_by"))
    if why is not None:
        raise BundleInvalid(why)


def _verify(
    entries_bytes: bytes, manifest: dict[str, Any], keys: dict[str, Ed25519PublicKey]
) -> Verified:
    listed = manifest["entries"]
    digest = hashlib.sha256(entries_bytes).hexdigest()
    if digest != listed["sha256"]:
        raise BundleInvalid(
            f"{ENTRIES} has SHA-256 {digest[:16]}..., the manifest says "
            f"{str(listed['sha256'])[:16]}...: the file was changed"
        )
    entries = _parse_lines(entries_bytes)
    if len(entries) != listed["count"]:
        raise BundleInvalid(
            f"{ENTRIES} has {len(entries)} entries, the manifest says {listed['count']}"
        )
    chains = _check_chains(entries, manifest["chains"])
    _check_scope(manifest["chains"], manifest["request"])
    checkpoints = _check_checkpoints(manifest["checkpoints"], keys)
    uncovered = _check_proofs(entries, manifest, checkpoints)
    used = sorted({c.key_fingerprint for c in checkpoints.values()})
    return Verified(len(entries), chains, len(checkpoints), uncovered, tuple(used))


def _parse_lines(data: bytes) -> list[dict[str, Any]]:
    entries = []
    for number, line in enumerate(data.splitlines(), start=1):
        try:
            entry = json.loads(line)
        except ValueError:
            raise BundleInvalid(f"{ENTRIES} line {number} is not JSON") from None
        if not isinstance(entry, dict) or not {"entry_id", "hash", "seq"} <= entry.keys():
            raise BundleInvalid(f"{ENTRIES} line {number} is not an audit entry")
        entries.append(entry)
    return entries


def _where(entry: Mapping[str, Any]) -> str:
    return (
        f"{entry.get('stream')} {entry.get('subject')} entry {entry.get('seq')} "
        f"(entry id {entry.get('entry_id')})"
    )


def _check_chains(entries: list[dict[str, Any]], segments: list[dict[str, Any]]) -> int:
    expected = {(s["stream"], s["subject"]): s for s in segments}
    seen: set[tuple[str, str]] = set()
    for key, chain in groupby(entries, key=lambda e: (e.get("stream"), e.get("subject"))):
        stream, subject = str(key[0]), str(key[1])
        if (stream, subject) in seen:
            raise BundleInvalid(f"{ENTRIES}: the {stream} chain of {subject} is split apart")
        seen.add((stream, subject))
        segment = expected.get((stream, subject))
        if segment is None:
            raise BundleInvalid(
                f"{ENTRIES}: the {stream} chain of {subject} is not in the manifest"
            )
        links = list(chain)
        start = (int(segment["start"]["seq"]), str(segment["start"]["hash"]))
        found = first_break(stream, subject, links, start=start)
        if found is not None:
            raise BundleInvalid(f"{ENTRIES}: {found.describe()}")
        last = links[-1]
        if (int(last["seq"]), last["hash"]) != (int(segment["last_seq"]), segment["last_hash"]):
            raise BundleInvalid(
                f"{ENTRIES}: the {stream} chain of {subject} ends at entry {last['seq']} "
                f"(hash {str(last['hash'])[:16]}...), the manifest says entry "
                f"{segment['last_seq']} (hash {str(segment['last_hash'])[:16]}...)"
            )
    for stream, subject in sorted(expected.keys() - seen):
        raise BundleInvalid(f"{ENTRIES}: the {stream} chain of {subject} is missing")
    return len(seen)


def _check_scope(segments: list[dict[str, Any]], request: dict[str, Any]) -> None:
    """A case's bundle holds only that case's chains (an organisation's cases are not
    known offline, so only its own chain's subject is checked)."""
    case, organisation = request.get("case_id"), request.get("organisation_id")
    for segment in segments:
        stream, subject = segment["stream"], segment["subject"]
        if case is not None and (subject != case or stream not in ("case", "sla")):
            raise BundleInvalid(f"the {stream} chain of {subject} is not case {case}'s")
        if organisation is not None and stream == "organisation" and subject != organisation:
            raise BundleInvalid(f"the organisation chain of {subject} is not {organisation}'s")


def _check_keys(
    listed: list[dict[str, Any]], expected: Ed25519PublicKey | None
) -> dict[str, Ed25519PublicKey]:
    keys = {}
    for item in listed:
        try:
            key = load_public_pem(str(item["pem"]).encode())
        except ValueError as error:
            raise BundleInvalid(f"public key {str(item['fingerprint'])[:16]}...: {error}") from None
        if fingerprint(key) != item["fingerprint"]:
            raise BundleInvalid(f"public key {str(item['fingerprint'])[:16]}...: wrong fingerprint")
        keys[item["fingerprint"]] = key
    if expected is not None:
        wanted = fingerprint(expected)
        others = sorted(set(keys) - {wanted})
        if others:
            raise BundleInvalid(
                f"the checkpoints are signed by key {others[0][:16]}..., "
                f"not the expected key {wanted[:16]}..."
            )
    return keys


def _check_checkpoints(
    listed: list[dict[str, Any]], keys: dict[str, Ed25519PublicKey]
) -> dict[int, Checkpoint]:
    checkpoints = {}
    for item in listed:
        checkpoint = Checkpoint.from_json(item)
        key = keys.get(checkpoint.key_fingerprint)
        if key is None:
            raise BundleInvalid(
                f"checkpoint {checkpoint.number}: the bundle has no public key "
                f"{checkpoint.key_fingerprint[:16]}..."
            )
        why = problem(checkpoint, key)
        if why is not None:
            raise BundleInvalid(f"checkpoint {checkpoint.number}: {why}")
        checkpoints[checkpoint.number] = checkpoint
    for number, checkpoint in sorted(checkpoints.items()):
        before = checkpoints.get(number - 1)
        if number == 1:
            links = checkpoint.prev_digest == GENESIS and checkpoint.after == 0
        elif before is None:
            continue  # its predecessor covers none of these entries: not in the bundle
        else:
            links = (checkpoint.prev_digest, checkpoint.after) == (before.digest, before.upto)
        if not links:
            raise BundleInvalid(f"checkpoint {number} does not chain to the checkpoint before it")
    return checkpoints


def _check_proofs(
    entries: list[dict[str, Any]], manifest: dict[str, Any], checkpoints: dict[int, Checkpoint]
) -> int:
    proofs = {int(p["entry_id"]): p for p in manifest["proofs"]}
    uncovered = {int(e) for e in manifest["uncovered"]}
    covered_upto = max((c.upto for c in checkpoints.values()), default=0)
    if int(manifest["covered_upto"]) != covered_upto:
        raise BundleInvalid(
            f"{MANIFEST} says checkpoints cover entries up to id {manifest['covered_upto']}, "
            f"its newest checkpoint covers up to id {covered_upto}"
        )
    for entry in entries:
        entry_id = int(entry["entry_id"])
        proof = proofs.get(entry_id)
        if proof is None:
            if entry_id not in uncovered:
                raise BundleInvalid(f"{_where(entry)} has no Merkle proof")
            if entry_id <= covered_upto:
                raise BundleInvalid(f"{_where(entry)} is listed as uncovered, but is covered")
            continue
        checkpoint = checkpoints.get(int(proof["checkpoint"]))
        if checkpoint is None:
            raise BundleInvalid(f"{_where(entry)}: its checkpoint {proof['checkpoint']} is absent")
        if not checkpoint.after < entry_id <= checkpoint.upto:
            raise BundleInvalid(
                f"{_where(entry)}: checkpoint {checkpoint.number} does not cover it"
            )
        path = [bytes.fromhex(step) for step in proof["path"]]
        root = root_from_proof(
            int(proof["index"]), checkpoint.count, leaf_hash(entry["hash"]), path
        )
        if root is None or root.hex() != checkpoint.merkle_root:
            raise BundleInvalid(
                f"{_where(entry)}: its Merkle proof does not lead to the signed root of "
                f"checkpoint {checkpoint.number}"
            )
    return sum(1 for e in entries if int(e["entry_id"]) not in proofs)

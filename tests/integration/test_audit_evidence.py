"""Signed checkpoints and evidence bundles on real PostgreSQL; bundles checked offline."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from casebook import commands as c
from casebook.application import Casebook
from casebook.database import Database
from casebook.settings import Settings
from domain.cases import NoteVisibility
from domain.values import Role, Severity
from projections.audit.bundle import BundleInvalid, verify_bundle
from projections.audit.bundle_signature import signature_json
from projections.audit.checkpoint import Checkpoint, fingerprint, problem
from projections.audit.checkpointer import checkpoint_now, covered_hashes, latest
from projections.audit.evidence import EvidenceRequest, EvidenceUnavailable, export_bundle
from projections.audit.merkle import MerkleTree
from projections.audit.projection import AuditProjection
from tests.integration.api_support import running_api
from tests.integration.conftest import CliRunner
from tests.integration.sla_support import rows, stored_envelopes
from tests.integration.write_side import as_agent, open_request, register_organisation

pytestmark = pytest.mark.integration
KEY = Ed25519PrivateKey.generate()


@dataclass
class Audited:
    """A case with audited events; more can be added and audited."""

    database: Database
    casebook: Casebook
    organisation: UUID
    case_id: UUID
    applied: int = 0

    def audit(self) -> None:
        """Append the entries of every event stored since the last call."""
        envelopes = stored_envelopes(self.casebook, after=self.applied)
        with psycopg.connect(self.database.url) as conn, conn.transaction():
            AuditProjection().apply(conn, envelopes)
        self.applied += len(envelopes)

    def checkpoint(self) -> list[Checkpoint]:
        with psycopg.connect(self.database.url, autocommit=True) as conn:
            return checkpoint_now(conn, KEY)

    def export(self, **asked: Any) -> bytes:
        with psycopg.connect(self.database.url) as conn:
            request = EvidenceRequest(**({"case_id": str(self.case_id)} | asked))
            return export_bundle(conn, request, now=datetime.now(UTC), key=KEY).data


@pytest.fixture
def audited(clean_database: Database) -> Iterator[Audited]:
    """Acme registered, a case opened, assessed and escalated: four entries, audited."""
    casebook = Casebook.connect(clean_database, Settings(database_url=clean_database.url))
    organisation = register_organisation(casebook)
    case_id = open_request(casebook, organisation)
    casebook.execute(c.AssignSeverity(case_id, Severity.B), as_agent())
    casebook.execute(c.EscalateSeverity(case_id, Severity.A, "Site down"), as_agent())
    audited = Audited(clean_database, casebook, organisation, case_id)
    audited.audit()
    yield audited
    casebook.close()


def respond_and_audit(audited: Audited) -> None:
    audited.casebook.execute(c.Respond(audited.case_id, "On it"), as_agent())
    audited.casebook.execute(
        c.AddNote(audited.case_id, "Called back", NoteVisibility.INTERNAL), as_agent()
    )
    audited.audit()


# -- checkpoints ------------------------------------------------------------------------


def test_a_checkpoint_signs_the_merkle_root_of_every_new_entry(audited: Audited) -> None:
    [checkpoint] = audited.checkpoint()
    assert (checkpoint.number, checkpoint.after, checkpoint.count) == (1, 0, 4)
    assert problem(checkpoint, KEY.public_key()) is None
    assert checkpoint.key_fingerprint == fingerprint(KEY.public_key())
    with psycopg.connect(audited.database.url) as conn:
        hashes = [h for _, h in covered_hashes(conn, checkpoint)]
        assert latest(conn) == checkpoint
    assert checkpoint.merkle_root == MerkleTree.of_entries(hashes).root.hex()
    assert audited.checkpoint() == []  # nothing new: no checkpoint


def test_checkpoints_chain_and_go_to_the_outbox_in_the_same_transaction(
    audited: Audited,
) -> None:
    [first] = audited.checkpoint()
    respond_and_audit(audited)
    [second] = audited.checkpoint()
    assert (second.number, second.after, second.count) == (2, first.upto, 2)
    assert second.prev_digest == first.digest
    outbox = rows(
        audited.database,
        "SELECT event_id, type, subject, payload FROM casebook_audit_checkpoint_outbox ORDER BY id",
    )
    assert [r[:3] for r in outbox] == [
        (f"checkpoint:1:{first.digest[:16]}", "casebook.audit.checkpoint_signed.v1", "audit-log"),
        (f"checkpoint:2:{second.digest[:16]}", "casebook.audit.checkpoint_signed.v1", "audit-log"),
    ]
    published = Checkpoint.from_json(outbox[1][3])
    assert published == second and problem(published, KEY.public_key()) is None
    assert "BEGIN PUBLIC KEY" in outbox[1][3]["public_key"]


def test_a_tampered_signature_or_field_does_not_verify(audited: Audited) -> None:
    [checkpoint] = audited.checkpoint()
    forged = Checkpoint.from_json(checkpoint.as_json() | {"count": 3})
    assert problem(forged, KEY.public_key()) == "its digest does not match its fields"
    other = Ed25519PrivateKey.generate()
    resigned = Checkpoint.from_json(
        checkpoint.as_json()
        | {"signature": base64.b64encode(other.sign(checkpoint.signed_bytes())).decode()}
    )
    assert problem(resigned, KEY.public_key()) == "its signature does not verify"


# -- bundles ----------------------------------------------------------------------------


def test_a_case_bundle_verifies_offline(audited: Audited) -> None:
    audited.checkpoint()
    respond_and_audit(audited)  # two entries after the checkpoint: uncovered
    verified = verify_bundle(audited.export(), KEY.public_key())
    assert (verified.entries, verified.chains, verified.uncovered) == (5, 1, 2)
    assert verified.checkpoints == 1
    audited.checkpoint()
    verified = verify_bundle(audited.export())
    assert (verified.entries, verified.uncovered, verified.checkpoints) == (5, 0, 2)


def test_a_bundle_over_a_period_starts_from_the_entry_before_it(audited: Audited) -> None:
    respond_and_audit(audited)
    audited.checkpoint()
    [[third_at]] = rows(
        audited.database,
        "SELECT occurred_at FROM casebook_audit_entries WHERE subject = %s AND seq = 3",
        audited.case_id,
    )
    entries, manifest = members(audited.export(since=third_at))
    [segment] = manifest["chains"]
    assert (segment["first_seq"], segment["last_seq"], segment["start"]["seq"]) == (3, 5, 2)
    assert [json.loads(line)["seq"] for line in entries.splitlines()] == [3, 4, 5]
    assert verify_bundle(audited.export(since=third_at)).entries == 3


def test_an_organisation_bundle_holds_its_chain_and_its_cases(audited: Audited) -> None:
    other_case = open_request(audited.casebook, audited.organisation)
    audited.audit()
    audited.checkpoint()
    verified = verify_bundle(
        audited.export(case_id=None, organisation_id=str(audited.organisation))
    )
    assert (verified.entries, verified.chains) == (5, 3)
    _, manifest = members(audited.export(case_id=None, organisation_id=str(audited.organisation)))
    subjects = {(s["stream"], s["subject"]) for s in manifest["chains"]}
    assert ("case", str(other_case)) in subjects
    assert ("organisation", str(audited.organisation)) in subjects


def test_export_refuses_when_the_log_no_longer_matches_a_checkpoint(audited: Audited) -> None:
    audited.checkpoint()
    with psycopg.connect(audited.database.url, autocommit=True) as conn:
        conn.execute(
            "UPDATE casebook_audit_entries SET actor_id = 'mallory', hash = repeat('0', 64) "
            "WHERE subject = %s AND seq = 2",
            (audited.case_id,),
        )
    with pytest.raises(EvidenceUnavailable, match="no longer matches signed checkpoint 1"):
        audited.export()


# -- modified bundles -------------------------------------------------------------------


def members(bundle: bytes) -> tuple[bytes, dict[str, Any]]:
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        return archive.read("entries.jsonl"), json.loads(archive.read("manifest.json"))


def rebuilt(
    entries: bytes, manifest: dict[str, Any], *, signed_by: Ed25519PrivateKey | None = KEY
) -> bytes:
    """A bundle of these files, its manifest signed again by `signed_by` (by default the
    audit key, so the checks behind the signature are reached; None: unsigned)."""
    manifest_bytes = json.dumps(manifest).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("entries.jsonl", entries)
        archive.writestr("manifest.json", manifest_bytes)
        if signed_by is not None:
            archive.writestr("signature.json", signature_json(sha256(manifest_bytes), signed_by))
    return out.getvalue()


def sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def edit_line(entries: bytes, index: int, **changes: Any) -> bytes:
    lines = entries.splitlines()
    lines[index] = json.dumps(json.loads(lines[index]) | changes).encode()
    return b"\n".join(lines) + b"\n"


def with_entries(manifest: dict[str, Any], entries: bytes) -> dict[str, Any]:
    count = len(entries.splitlines())
    return manifest | {"entries": manifest["entries"] | {"sha256": sha256(entries), "count": count}}


Tamper = Callable[[bytes, dict[str, Any]], tuple[bytes, dict[str, Any]]]


def _edit_entry(entries: bytes, manifest: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    return edit_line(entries, 1, actor_id="mallory"), manifest


def _edit_entry_and_its_hash(
    entries: bytes, manifest: dict[str, Any]
) -> tuple[bytes, dict[str, Any]]:
    edited = edit_line(entries, 1, actor_id="mallory")
    return edited, with_entries(manifest, edited)


def _drop_line(entries: bytes, manifest: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    lines = entries.splitlines(keepends=True)
    dropped = b"".join(lines[:2] + lines[3:])
    return dropped, with_entries(manifest, dropped)


def _alter_root(entries: bytes, manifest: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    first = manifest["checkpoints"][0] | {"merkle_root": "ab" * 32}
    return entries, manifest | {"checkpoints": [first, *manifest["checkpoints"][1:]]}


def _alter_proof(entries: bytes, manifest: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    proof = manifest["proofs"][0]
    proof = proof | {"path": ["cd" * 32, *proof["path"][1:]]}
    return entries, manifest | {"proofs": [proof, *manifest["proofs"][1:]]}


def _swap_signatures(entries: bytes, manifest: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    one, two = manifest["checkpoints"][:2]
    swapped = [one | {"signature": two["signature"]}, two | {"signature": one["signature"]}]
    return entries, manifest | {"checkpoints": swapped + manifest["checkpoints"][2:]}


def _other_case(entries: bytes, manifest: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    other = "00000000-0000-0000-0000-000000000001"
    return entries, manifest | {"request": manifest["request"] | {"case_id": other}}


def _claim_uncovered(entries: bytes, manifest: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    proof, *rest = manifest["proofs"]
    return entries, manifest | {"proofs": rest, "uncovered": [proof["entry_id"]]}


def _cut_segment_end(entries: bytes, manifest: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    cut = b"".join(entries.splitlines(keepends=True)[:-1])
    return cut, with_entries(manifest, cut)  # the segment's recorded end left as it was


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (_edit_entry, "entries.jsonl has SHA-256"),
        (_edit_entry_and_its_hash, "entry 2 (entry id 3): its content does not match its hash"),
        (_drop_line, "entry 3 is missing before it"),
        (_alter_root, "checkpoint 1: its digest does not match its fields"),
        (_alter_proof, "its Merkle proof does not lead to the signed root of checkpoint 1"),
        (_swap_signatures, "checkpoint 1: its signature does not verify"),
        (_claim_uncovered, "is listed as uncovered, but is covered"),
        (_other_case, "is not case 00000000-0000-0000-0000-000000000001's"),
        (_cut_segment_end, "ends at entry 4 (hash "),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else "",
)
def test_a_modified_bundle_names_what_is_wrong(
    audited: Audited, tamper: Tamper, message: str
) -> None:
    """Even with its manifest signed again by the audit key, what the manifest claims is
    checked: these hold however the bundle was signed."""
    audited.checkpoint()
    respond_and_audit(audited)
    audited.checkpoint()
    entries, manifest = tamper(*members(audited.export()))
    with pytest.raises(BundleInvalid, match=message.replace("(", r"\(").replace(")", r"\)")):
        verify_bundle(rebuilt(entries, manifest))


def _cut_and_make_consistent(
    entries: bytes, manifest: dict[str, Any]
) -> tuple[bytes, dict[str, Any]]:
    lines = entries.splitlines(keepends=True)
    cut, last = b"".join(lines[:-1]), json.loads(lines[-2])
    [segment] = manifest["chains"]
    chain = segment | {"last_seq": last["seq"], "last_hash": last["hash"], "count": 4}
    return cut, with_entries(manifest, cut) | {"chains": [chain], "proofs": manifest["proofs"][:-1]}


def _edit_exported_at(entries: bytes, manifest: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    return entries, manifest | {"exported_at": "2020-01-01T00:00:00.000000+00:00"}


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (_edit_entry, "entries.jsonl has SHA-256"),
        (_edit_exported_at, "the manifest was changed"),
        (_edit_entry_and_its_hash, "the manifest was changed"),
        (_cut_and_make_consistent, "the manifest was changed"),
        (_alter_root, "the manifest was changed"),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else "",
)
def test_a_bundle_changed_after_signing_fails_on_its_signature(
    audited: Audited, tamper: Tamper, message: str
) -> None:
    audited.checkpoint()
    respond_and_audit(audited)
    audited.checkpoint()
    bundle = audited.export()
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    entries, manifest = tamper(*members(bundle))
    if manifest != json.loads(files["manifest.json"]):
        files["manifest.json"] = json.dumps(manifest).encode()
    with pytest.raises(BundleInvalid, match=message):
        verify_bundle(zipped(files | {"entries.jsonl": entries}))


def test_the_manifest_signature_covers_every_byte_of_the_manifest(audited: Audited) -> None:
    audited.checkpoint()
    bundle = audited.export()
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    assert list(files) == ["entries.jsonl", "manifest.json", "signature.json"]
    spaced = files["manifest.json"].replace(b'": ', b'":  ', 1)  # same meaning, other bytes
    with pytest.raises(BundleInvalid, match="the manifest was changed"):
        verify_bundle(zipped(files | {"manifest.json": spaced}))


def zipped(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def test_a_bundle_with_a_file_extra_missing_or_wrongly_signed_is_refused(
    audited: Audited,
) -> None:
    audited.checkpoint()
    bundle = audited.export()
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    assert verify_bundle(zipped(files), KEY.public_key()).entries == 3
    mallory = Ed25519PrivateKey.generate()
    digest = sha256(files["manifest.json"])
    forged = json.loads(signature_json(digest, KEY)) | {
        "signature": json.loads(signature_json(digest, mallory))["signature"]
    }
    cases = {
        "the bundle holds a file it should not: notes.txt": files | {"notes.txt": b"hi"},
        "the bundle has no signature.json": {k: v for k, v in files.items() if "sig" not in k},
        "the bundle has no entries.jsonl": {k: v for k, v in files.items() if "ent" not in k},
        "signature.json: the bundle has no public key": files
        | {"signature.json": signature_json(digest, mallory)},
        "the manifest's signature does not verify": files
        | {"signature.json": json.dumps(forged).encode()},
        "signature.json is not JSON": files | {"signature.json": b"unsigned"},
    }
    for message, changed in cases.items():
        with pytest.raises(BundleInvalid, match=message):
            verify_bundle(zipped(changed))


def test_a_bundle_of_the_unsigned_format_is_refused_with_why(audited: Audited) -> None:
    audited.checkpoint()
    entries, manifest = members(audited.export())
    old = manifest | {"format": "casebook-evidence-bundle/1"}
    with pytest.raises(BundleInvalid, match="format casebook-evidence-bundle/1 has no signed"):
        verify_bundle(rebuilt(entries, old, signed_by=None))


def test_a_bundle_re_signed_with_another_key_fails_only_against_the_expected_key(
    audited: Audited,
) -> None:
    audited.checkpoint()
    entries, manifest = members(audited.export())
    mallory = Ed25519PrivateKey.generate()
    forged = []
    for item in manifest["checkpoints"]:
        body = Checkpoint.from_json(item)
        body = Checkpoint.from_json(
            body.as_json() | {"key_fingerprint": fingerprint(mallory.public_key())}
        )
        signed = body.signed_bytes()
        forged.append(
            body.as_json()
            | {
                "digest": sha256(signed),
                "signature": base64.b64encode(mallory.sign(signed)).decode(),
            }
        )
    pem = mallory.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    keys = [{"fingerprint": fingerprint(mallory.public_key()), "pem": pem.decode()}]
    signer = fingerprint(mallory.public_key())
    forgery = {"checkpoints": forged, "public_keys": keys, "signed_by": signer}
    bundle = rebuilt(entries, manifest | forgery, signed_by=mallory)
    assert verify_bundle(bundle).entries == 3
    with pytest.raises(BundleInvalid, match="not the expected key"):
        verify_bundle(bundle, KEY.public_key())


# -- command line and API ---------------------------------------------------------------


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def test_export_then_verify_bundle_from_the_command_line(
    audited: Audited, cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(private_pem(KEY))
    monkeypatch.setenv("CASEBOOK_AUDIT_SIGNING_KEY_FILE", str(key_file))
    db = audited.database
    signed = cli("audit", "checkpoint", db=db)
    assert signed.code == 0 and signed.stdout.startswith("checkpoint 1: entries 1-4 (4)")
    out = tmp_path / "bundle.zip"
    exported = cli("audit", "export", "--case", str(audited.case_id), "--out", str(out), db=db)
    assert exported.code == 0, exported.stderr
    assert "3 entries in 1 chains, 1 checkpoint(s), 0 not yet covered" in exported.stdout
    verified = cli("audit", "verify-bundle", str(out), "--public-key", str(key_file), db=db)
    assert verified.code == 0, verified.stderr
    assert verified.stdout.startswith("OK: 3 entries in 1 chains")

    edited = tmp_path / "edited.zip"  # one count in the manifest lowered, nothing else
    with zipfile.ZipFile(out) as original, zipfile.ZipFile(edited, "w") as copy:
        for name in original.namelist():
            data = original.read(name)
            copy.writestr(name, data.replace(b'"count": 3', b'"count": 2', 1))
    refused = cli("audit", "verify-bundle", str(edited), db=db)
    assert refused.code == 1 and len(refused.stderr.splitlines()) == 1
    assert refused.stderr.startswith(f"casebook: error: {edited}: manifest.json has SHA-256 ")
    assert refused.stderr.rstrip().endswith("the manifest was changed")

    other = tmp_path / "other.pem"
    other.write_bytes(private_pem(Ed25519PrivateKey.generate()))
    wrong = cli("audit", "verify-bundle", str(out), "--public-key", str(other), db=db)
    assert wrong.code == 1
    assert wrong.stderr.startswith(f"casebook: error: {out}: the checkpoints are signed by key ")
    assert len(wrong.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("export", "--out", "x.zip"), 2, "give exactly one of --case and --organisation"),
        (
            ("export", "--case", "0" * 32, "--since", "2025-01-01", "--out", "x.zip"),
            2,
            "UTC offset",
        ),
        (
            ("export", "--case", "0" * 32, "--out", "x.zip"),
            1,
            "no audit entries for case 00000000-0000-0000-0000-000000000000 in that period",
        ),
        (("verify-bundle", "missing.zip"), 1, "missing.zip: No such file or directory"),
        (("verify-bundle", "not-a-zip.zip"), 1, "not an evidence bundle"),
        (("checkpoint",), 1, "CASEBOOK_AUDIT_SIGNING_KEY_FILE"),
    ],
)
def test_command_line_errors_are_one_line(
    clean_database: Database,
    cli: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    code: int,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CASEBOOK_AUDIT_SIGNING_KEY_FILE", raising=False)
    (tmp_path / "not-a-zip.zip").write_text("hello")
    result = cli("audit", *args, db=clean_database)
    assert result.code == code
    assert result.stderr.startswith("casebook: error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_auditors_download_the_same_bundle_over_the_api(audited: Audited, tmp_path: Path) -> None:
    audited.checkpoint()
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(private_pem(KEY))
    settings = Settings(database_url=audited.database.url, audit_signing_key_file=key_file)
    with running_api(audited.database, settings=settings) as api, TestClient(api.app) as client:
        path = f"/audit/cases/{audited.case_id}/evidence"
        response = client.get(path, headers=api.as_(Role.AUDITOR))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/zip"
        assert verify_bundle(response.content, KEY.public_key()).entries == 3
        org = client.get(
            f"/audit/organisations/{audited.organisation}/evidence",
            headers=api.as_(Role.AUDITOR),
        )
        assert verify_bundle(org.content).chains == 2
        assert client.get(path, headers=api.as_(Role.AGENT)).status_code == 403
        unknown = client.get(f"/audit/cases/{UUID(int=1)}/evidence", headers=api.as_(Role.AUDITOR))
        assert unknown.status_code == 404
        bad = client.get(
            path,
            params={"since": "2025-02-01T00:00:00+00:00", "until": "2025-01-01T00:00:00+00:00"},
            headers=api.as_(Role.AUDITOR),
        )
        assert bad.status_code == 422 and bad.json()["rule"] == "evidence-period-is-valid"


def test_an_api_process_without_a_signing_key_refuses_bundles(audited: Audited) -> None:
    settings = Settings(database_url=audited.database.url)  # external, and no key file
    with running_api(audited.database, settings=settings) as api, TestClient(api.app) as client:
        path = f"/audit/cases/{audited.case_id}/evidence"
        response = client.get(path, headers=api.as_(Role.AUDITOR))
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["rule"] == "evidence-is-signed"
    assert "CASEBOOK_AUDIT_SIGNING_KEY_FILE" in response.json()["detail"]

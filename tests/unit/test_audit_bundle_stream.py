"""Bundles written piece by piece: the same manifest text, a zip any reader opens."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from typing import Any

import pytest

from projections.audit.bundle_stream import CHUNK, batched, json_pieces, zip_stream

MANIFEST: dict[str, Any] = {
    "format": "casebook-evidence-bundle/1",
    "request": {"case_id": None, "organisation_id": "o", "since": None, "until": None},
    "entries": {"file": "entries.jsonl", "sha256": "ab" * 32, "count": 3},
    "chains": [{"stream": "case", "start": {"seq": 0, "hash": "0" * 64}, "count": 3}],
    "proofs": [
        {"entry_id": 1, "checkpoint": 1, "index": 0, "path": ["cd" * 32, "ef" * 32]},
        {"entry_id": 2, "checkpoint": 1, "index": 1, "path": []},
    ],
    "uncovered": [3],
    "empty": [],
    "note": 'quotes " and a newline \n and ünïcode',
    "checkpoints": [],
    "covered_upto": 2,
}


@pytest.mark.parametrize("lazy", [(), ("proofs",), ("proofs", "uncovered", "empty", "chains")])
def test_the_manifest_reads_as_json_dumps_writes_it_whichever_lists_are_lazy(
    lazy: tuple[str, ...],
) -> None:
    document = {k: iter(v) if k in lazy else v for k, v in MANIFEST.items()}
    expected = json.dumps(MANIFEST, indent=2, sort_keys=True)
    assert "".join(json_pieces(document)) == expected


def test_an_empty_document_is_an_empty_object() -> None:
    assert "".join(json_pieces({})) == "{}"


def test_the_zip_holds_every_member_whole_and_arrives_in_chunks() -> None:
    big = [hashlib.sha256(str(n).encode()).hexdigest().encode() + b"\n" for n in range(20_000)]
    chunks = list(zip_stream([("a.txt", iter(big)), ("b.json", [b"{}\n"])]))
    assert len(chunks) > 2  # sent as it is written, not at the end
    assert all(len(chunk) >= CHUNK for chunk in chunks[:-1])
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == ["a.txt", "b.json"]
        assert archive.read("a.txt") == b"".join(big)
        assert archive.getinfo("a.txt").date_time == (1980, 1, 1, 0, 0, 0)


def test_batches_join_small_pieces_and_keep_every_byte() -> None:
    pieces: list[str | bytes] = ["ab", b"cd", "é"] * 1000
    runs = list(batched(pieces, size=100))
    assert (
        b"".join(runs) == "".join(p if isinstance(p, str) else p.decode() for p in pieces).encode()
    )
    assert all(len(run) >= 100 for run in runs[:-1])

"""The privacy master key: generated once beside an embedded database, required otherwise."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from privacy.master_key import EMBEDDED_KEY_NAME, MasterKeyUnavailable, load_master_key


def test_an_embedded_database_gets_a_private_key_made_once(tmp_path: Path) -> None:
    first = load_master_key(None, embedded_data_dir=tmp_path)
    again = load_master_key(None, embedded_data_dir=tmp_path)
    assert first == again and len(first) == 32
    assert (tmp_path / EMBEDDED_KEY_NAME).stat().st_mode & 0o777 == 0o600


def test_an_external_database_without_a_key_file_is_refused_by_name() -> None:
    with pytest.raises(MasterKeyUnavailable, match="CASEBOOK_PRIVACY_MASTER_KEY_FILE"):
        load_master_key(None, embedded_data_dir=None)


@pytest.mark.parametrize(
    ("content", "why"),
    [("not base64!", "not base64"), (base64.b64encode(b"short").decode(), "must be 32 bytes")],
)
def test_a_malformed_key_file_is_refused_saying_why(tmp_path: Path, content: str, why: str) -> None:
    path = tmp_path / "key"
    path.write_text(content)
    with pytest.raises(MasterKeyUnavailable, match=why):
        load_master_key(path, embedded_data_dir=None)

"""The privacy master key: configured, or generated beside an embedded database.

As with the audit signing key, an external database is production: its master key is
managed by operators (CASEBOOK_PRIVACY_MASTER_KEY_FILE) and nothing starts without it,
since a key invented on one host would seal data no other host can open. The embedded
database's key is generated beside it on first use.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from privacy.envelope import KEY_BYTES, new_key
from privacy.key_files import create_key_file

EMBEDDED_KEY_NAME = "privacy-master-key"


class MasterKeyUnavailable(RuntimeError):
    """No usable master key: missing, unreadable or not 32 bytes of base64."""


def load_master_key(configured: Path | None, *, embedded_data_dir: Path | None) -> bytes:
    """The key in `configured`; without one, the embedded database's (made if absent).

    `embedded_data_dir` is None with an external database: then a key must be configured.
    """
    if configured is not None:
        path = configured
    elif embedded_data_dir is not None:
        path = embedded_data_dir / EMBEDDED_KEY_NAME
        if not path.exists():
            _generate(path)
    else:
        raise MasterKeyUnavailable(
            "personal data needs a master key with an external database: set "
            "CASEBOOK_PRIVACY_MASTER_KEY_FILE to a file holding 32 random bytes in base64, "
            "e.g. from `openssl rand -base64 32`"
        )
    try:
        text = path.read_text().strip()
    except OSError as error:
        reason = error.strerror
        raise MasterKeyUnavailable(f"{path}: cannot read the master key ({reason})") from None
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise MasterKeyUnavailable(f"{path}: the master key is not base64") from None
    if len(key) != KEY_BYTES:
        raise MasterKeyUnavailable(
            f"{path}: the master key must be {KEY_BYTES} bytes, it has {len(key)}"
        )
    return key


def _generate(path: Path) -> None:
    create_key_file(path, base64.b64encode(new_key()) + b"\n")

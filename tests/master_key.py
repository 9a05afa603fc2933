"""The privacy master key of every process the suite starts with an external database.

Production refuses to seal personal data without a configured master key; the suite's
servers are "external" to casebook, so they get this one: a fresh key per session, in
a private file removed at exit.
"""

from __future__ import annotations

import atexit
import base64
import os
import shutil
import tempfile
from pathlib import Path

MASTER_KEY_VARIABLE = "CASEBOOK_PRIVACY_MASTER_KEY_FILE"


def session_master_key_file() -> Path:
    directory = Path(tempfile.mkdtemp(prefix="casebook-test-keys-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    path = directory / "privacy-master-key"
    path.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    path.chmod(0o600)
    return path

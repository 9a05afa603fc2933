"""Key files generated beside an embedded database: written once, whole, private."""

from __future__ import annotations

import os
from pathlib import Path


def create_key_file(path: Path, content: bytes) -> None:
    """Write `content` to `path` (mode 0600) unless a key is there already.

    Written aside, then linked into place: a process starting at the same moment sees
    either no key or a whole one, and only one key ever wins.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(content)
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink()

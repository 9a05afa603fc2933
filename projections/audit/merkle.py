"""Merkle trees over audit entry hashes, RFC 6962 style (as Certificate Transparency).

Pure. A leaf is SHA-256(0x00 || entry hash bytes), an inner node SHA-256(0x01 || left ||
right); the tree over n leaves splits at the largest power of two below n. Building it
level by level, carrying a lone last node up unchanged, gives the same tree, so one pass
yields the root and every inclusion proof in O(log n) each.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()
_NODE = 32  # bytes of a SHA-256 digest


def leaf_hash(entry_hash: str) -> bytes:
    """The leaf for an entry: its hex hash as bytes, domain-separated from inner nodes."""
    return hashlib.sha256(b"\x00" + bytes.fromhex(entry_hash)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


class MerkleTree:
    """Every level of the tree over `leaves` (already leaf-hashed), bottom first.

    A level is one bytes object of 32-byte nodes, not a list of them: a tree over n
    leaves takes about 64 n bytes, so an export can hold the trees of every checkpoint
    it proves entries against.
    """

    def __init__(self, leaves: Iterable[bytes]) -> None:
        level = b"".join(leaves)
        self.size = len(level) // _NODE
        self._levels = [level]
        while len(level) > _NODE:
            count = len(level) // _NODE
            above = b"".join(
                node_hash(_node(level, i), _node(level, i + 1)) for i in range(0, count - 1, 2)
            )
            if count % 2:
                above += _node(level, count - 1)
            self._levels.append(above)
            level = above

    @classmethod
    def of_entries(cls, entry_hashes: Iterable[str]) -> MerkleTree:
        return cls(leaf_hash(h) for h in entry_hashes)

    @property
    def root(self) -> bytes:
        return self._levels[-1] if self.size else EMPTY_ROOT

    def proof(self, index: int) -> list[bytes]:
        """The audit path of leaf `index`: sibling hashes from the leaf up to the root."""
        if not 0 <= index < self.size:
            raise IndexError(f"leaf {index} is outside a tree of {self.size}")
        path = []
        for level in self._levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level) // _NODE:
                path.append(_node(level, sibling))
            index //= 2
        return path


def _node(level: bytes, index: int) -> bytes:
    return level[index * _NODE : (index + 1) * _NODE]


def root_from_proof(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes | None:
    """The root that `path` leads to from `leaf` at `index` (RFC 9162 §2.1.3.2), or None
    when the path cannot belong to a tree of `size` leaves."""
    if not 0 <= index < size:
        return None
    fn, sn, node = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            return None
        if fn % 2 == 1 or fn == sn:
            node = node_hash(sibling, node)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            node = node_hash(node, sibling)
        fn, sn = fn >> 1, sn >> 1
    return node if sn == 0 else None

"""Merkle inclusion proofs of exported entries, against the checkpoints that cover them.

Each covering checkpoint's tree is rebuilt once from the entries it covers, so it can be
checked against the signed root before anything is exported; the proof of an entry is
read off its tree only when the manifest needs it.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from typing import Any

from projections.audit.checkpoint import Checkpoint
from projections.audit.merkle import MerkleTree


class CheckpointTree:
    """The Merkle tree over the entries one checkpoint covers, and their ids."""

    def __init__(self, checkpoint: Checkpoint, covered: list[tuple[int, str]]) -> None:
        self.checkpoint = checkpoint
        self._ids = array("q", (entry_id for entry_id, _ in covered))  # ascending
        self._tree = MerkleTree.of_entries(hash_ for _, hash_ in covered)

    @property
    def matches(self) -> bool:
        """Whether the log still holds what the checkpoint signed."""
        checkpoint = self.checkpoint
        return (
            len(self._ids) == checkpoint.count and self._tree.root.hex() == checkpoint.merkle_root
        )

    def index_of(self, entry_id: int) -> int | None:
        """The entry's leaf index, or None when the checkpoint does not cover it."""
        index = bisect_left(self._ids, entry_id)
        return index if index < len(self._ids) and self._ids[index] == entry_id else None

    def proof(self, entry_id: int, index: int) -> dict[str, Any]:
        return {
            "entry_id": entry_id,
            "checkpoint": self.checkpoint.number,
            "index": index,
            "path": [step.hex() for step in self._tree.proof(index)],
        }


class Proofs:
    """Inclusion proofs against checkpoints whose ranges of entry ids do not overlap."""

    def __init__(self, trees: list[CheckpointTree]) -> None:
        self._trees = sorted(trees, key=lambda tree: tree.checkpoint.after)
        self._afters = [tree.checkpoint.after for tree in self._trees]

    def covers(self, entry_id: int) -> bool:
        return self._find(entry_id) is not None

    def of(self, entry_id: int) -> dict[str, Any] | None:
        """The entry's checkpoint, leaf index and audit path; None when uncovered."""
        found = self._find(entry_id)
        return found[0].proof(entry_id, found[1]) if found is not None else None

    def _find(self, entry_id: int) -> tuple[CheckpointTree, int] | None:
        # The checkpoint whose range (after, upto] could hold the entry: the last one
        # that starts below it.
        position = bisect_right(self._afters, entry_id - 1) - 1
        if position < 0:
            return None
        tree = self._trees[position]
        index = tree.index_of(entry_id)
        return (tree, index) if index is not None else None

"""Merkle roots and inclusion proofs over audit entry hashes (RFC 6962 shape)."""

from __future__ import annotations

import hashlib

import pytest

from projections.audit.merkle import EMPTY_ROOT, MerkleTree, leaf_hash, node_hash, root_from_proof


def entry_hashes(n: int) -> list[str]:
    return [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)]


def rfc6962_root(leaves: list[bytes]) -> bytes:
    """MTH as RFC 6962 §2.1 defines it: split at the largest power of two below n."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(rfc6962_root(leaves[:k]), rfc6962_root(leaves[k:]))


def test_a_leaf_is_the_entry_hash_prefixed_with_a_zero_byte() -> None:
    entry = "ab" * 32
    assert leaf_hash(entry) == hashlib.sha256(b"\x00" + bytes.fromhex(entry)).digest()
    assert MerkleTree.of_entries([entry]).root == leaf_hash(entry)


def test_two_leaves_hash_under_a_one_byte_prefix() -> None:
    a, b = entry_hashes(2)
    expected = hashlib.sha256(b"\x01" + leaf_hash(a) + leaf_hash(b)).digest()
    assert MerkleTree.of_entries([a, b]).root == expected


@pytest.mark.parametrize("size", [*range(1, 34), 100, 257])
def test_the_root_is_rfc_6962_s_for_any_number_of_leaves(size: int) -> None:
    hashes = entry_hashes(size)
    assert MerkleTree.of_entries(hashes).root == rfc6962_root([leaf_hash(h) for h in hashes])


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 8, 9, 31, 64, 100])
def test_every_leaf_s_proof_leads_to_the_root(size: int) -> None:
    hashes = entry_hashes(size)
    tree = MerkleTree.of_entries(hashes)
    for index, entry in enumerate(hashes):
        assert root_from_proof(index, size, leaf_hash(entry), tree.proof(index)) == tree.root


def test_a_proof_fails_for_another_leaf_index_or_tree_size() -> None:
    hashes = entry_hashes(11)
    tree = MerkleTree.of_entries(hashes)
    proof = tree.proof(6)
    assert root_from_proof(6, 11, leaf_hash(hashes[5]), proof) != tree.root
    assert root_from_proof(5, 11, leaf_hash(hashes[6]), proof) != tree.root
    assert root_from_proof(6, 7, leaf_hash(hashes[6]), proof) is None
    assert root_from_proof(6, 11, leaf_hash(hashes[6]), proof[:-1]) != tree.root
    assert root_from_proof(11, 11, leaf_hash(hashes[6]), proof) is None


def test_an_empty_tree_has_the_hash_of_nothing_and_no_proofs() -> None:
    tree = MerkleTree.of_entries([])
    assert tree.root == hashlib.sha256(b"").digest()
    with pytest.raises(IndexError):
        tree.proof(0)

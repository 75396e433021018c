"""RFC 6962 section 2.1 Merkle tree hashing: the one implementation server, clients and training share."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


class StreamingRoot:
    """Merkle root over leaves fed one at a time, in O(log n) memory.

    Keeps the roots of the perfect subtrees seen so far (sizes are the binary digits of n);
    folding them right to left gives the RFC's largest-power-of-two split.
    """

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []
        self.size = 0

    def add_leaf_hash(self, h: bytes) -> None:
        size, node = 1, h
        while self._stack and self._stack[-1][0] == size:
            left_size, left = self._stack.pop()
            size, node = left_size + size, node_hash(left, node)
        self._stack.append((size, node))
        self.size += 1

    def add(self, data: bytes) -> None:
        self.add_leaf_hash(leaf_hash(data))

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        node = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            node = node_hash(left, node)
        return node


def root_from_leaf_hashes(hashes: Iterable[bytes]) -> bytes:
    """Merkle tree hash of a sequence of leaf hashes."""
    acc = StreamingRoot()
    for h in hashes:
        acc.add_leaf_hash(h)
    return acc.root()


def root_of(leaves: Iterable[bytes]) -> bytes:
    """Merkle tree hash of a sequence of raw leaves."""
    return root_from_leaf_hashes(leaf_hash(d) for d in leaves)

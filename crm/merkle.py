"""RFC 6962 section 2.1 Merkle tree hashing: the one implementation server, clients and training share.

Besides the tree hash, this module holds the reference proof generators over an in-memory list
(PATH and PROOF exactly as RFC 6962 2.1.1/2.1.2 define them, for tests and small callers), the
proof verifiers (RFC 9162 2.1.3.2/2.1.4.2), and the signed-tree-head signature input, so the
server, the clients and any third party agree byte for byte.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Sequence
from operator import itemgetter, methodcaller

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


# -- many hashes per call: the loops run in C (map), not in bytecode --------------------------

_digest = methodcaller("digest")
_first = itemgetter(0)


def hash_each(messages: Iterable[bytes]) -> bytes:
    """SHA-256 of each message (already carrying its 0x00 or 0x01 prefix), concatenated.

    One Python call per message costs more than its two SHA-256 blocks; mapping hashlib over
    the messages keeps the per-message cost at hashlib's own.
    """
    return b"".join(map(_digest, map(hashlib.sha256, messages)))


def py_perfect_root(leaf_hashes: bytes) -> bytes:
    """Root of a perfect subtree whose 2**k leaf hashes are given concatenated, level by level."""
    count = len(leaf_hashes) // HASH_SIZE
    if count < 1 or count & (count - 1) or len(leaf_hashes) % HASH_SIZE:
        raise ValueError(f"{len(leaf_hashes)} bytes are not a power-of-two count of hashes")
    level = leaf_hashes
    while len(level) > HASH_SIZE:
        pairs = map(_first, struct.iter_unpack(f"{2 * HASH_SIZE}s", level))
        level = hash_each(map(NODE_PREFIX.__add__, pairs))
    return level


try:  # the same loop in C (crm/_leaves.c), when it was built
    from crm._leaves import perfect_root
except ImportError:
    perfect_root = py_perfect_root


class StreamingRoot:
    """Merkle root over leaves fed one at a time, in O(log n) memory.

    Keeps the roots of the perfect subtrees seen so far (sizes are the binary digits of n);
    folding them right to left gives the RFC's largest-power-of-two split.
    """

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []
        self.size = 0

    @classmethod
    def resume(cls, size: int, subtree_hashes: Sequence[bytes]) -> StreamingRoot:
        """Continue a tree of `size` leaves from the roots of its perfect subtrees, largest first.

        Those subtrees are the ones whose sizes are the binary digits of `size`, so a log can
        append without reading its old leaves.
        """
        sizes = [1 << bit for bit in reversed(range(size.bit_length())) if size >> bit & 1]
        if len(sizes) != len(subtree_hashes):
            raise ValueError(
                f"size {size} needs {len(sizes)} subtree hashes, got {len(subtree_hashes)}"
            )
        acc = cls()
        acc._stack = list(zip(sizes, subtree_hashes, strict=True))
        acc.size = size
        return acc

    def add_leaf_hash(
        self, h: bytes, completed: list[tuple[int, int, bytes]] | None = None
    ) -> None:
        """Add the next leaf; perfect subtrees it completes go to `completed` as (level, index, hash).

        Subtree (level, index) covers leaves [index * 2**level, (index + 1) * 2**level).
        """
        size, node = 1, h
        while self._stack and self._stack[-1][0] == size:
            left_size, left = self._stack.pop()
            size, node = left_size + size, node_hash(left, node)
            if completed is not None:
                completed.append((size.bit_length() - 1, self.size // size, node))
        self._stack.append((size, node))
        self.size += 1

    def add_leaf_hashes(self, leaf_hashes: bytes) -> None:
        """Add many leaves at once, their hashes concatenated: the same tree as one at a time.

        The leaves are cut into the largest perfect subtrees that start at the current size
        (a power of two dividing it), each hashed level by level with perfect_root.
        """
        if len(leaf_hashes) % HASH_SIZE:
            raise ValueError(f"{len(leaf_hashes)} bytes are not whole {HASH_SIZE}-byte hashes")
        pos, count = 0, len(leaf_hashes) // HASH_SIZE
        while pos < count:
            aligned = self.size & -self.size or count
            take = min(aligned, 1 << ((count - pos).bit_length() - 1))
            node = perfect_root(leaf_hashes[pos * HASH_SIZE : (pos + take) * HASH_SIZE])
            size = take
            while self._stack and self._stack[-1][0] == size:
                left_size, left = self._stack.pop()
                size, node = left_size + size, node_hash(left, node)
            self._stack.append((size, node))
            self.size += take
            pos += take

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


# -- reference proofs over an in-memory list (RFC 6962 section 2.1.1 and 2.1.2) --------------


def split_point(n: int) -> int:
    """The largest power of two smaller than n (n >= 2): where the RFC splits D[n]."""
    if n < 2:
        raise ValueError(f"no split for a tree of {n} leaves")
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_path(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(m, D[n]) over the leaf hashes of the whole tree, leaf to root order.

    A literal transcription of the RFC's recursion: O(n) hashing, for reference and tests.
    """
    n = len(leaf_hashes)
    if not 0 <= index < n:
        raise ValueError(f"leaf index {index} not in a tree of {n} leaves")
    if n == 1:
        return []
    k = split_point(n)
    if index < k:
        return [*inclusion_path(leaf_hashes[:k], index), root_from_leaf_hashes(leaf_hashes[k:])]
    return [*inclusion_path(leaf_hashes[k:], index - k), root_from_leaf_hashes(leaf_hashes[:k])]


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """PROOF(m, D[n]) between the first `old_size` leaves and all of them (0 < m <= n)."""
    n = len(leaf_hashes)
    if not 0 < old_size <= n:
        raise ValueError(f"old size {old_size} not in 1..{n}")
    return _subproof(old_size, leaf_hashes, True)


def _subproof(m: int, leaf_hashes: Sequence[bytes], complete: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) of RFC 6962 section 2.1.2."""
    n = len(leaf_hashes)
    if m == n:
        return [] if complete else [root_from_leaf_hashes(leaf_hashes)]
    k = split_point(n)
    if m <= k:
        return [*_subproof(m, leaf_hashes[:k], complete), root_from_leaf_hashes(leaf_hashes[k:])]
    return [*_subproof(m - k, leaf_hashes[k:], False), root_from_leaf_hashes(leaf_hashes[:k])]


# -- verification (RFC 9162 sections 2.1.3.2 and 2.1.4.2) -------------------------------------


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """True iff `path` proves the leaf with hash `leaf_hash` sits at `index` in the tree `root`."""
    if not (0 <= index < tree_size and _is_hash(leaf_hash) and _is_hash(root)):
        return False
    if not all(_is_hash(p) for p in path):
        return False
    fn, sn, r = index, tree_size - 1, leaf_hash
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> bool:
    """True iff `proof` shows the tree `root1` of size1 leaves is a prefix of `root2` of size2."""
    if not (0 <= size1 <= size2 and _is_hash(root1) and _is_hash(root2)):
        return False
    if not all(_is_hash(p) for p in proof):
        return False
    if size1 == size2:
        return not proof and root1 == root2
    if size1 == 0:
        return not proof and root1 == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # an exact power of two: the old root is itself a node
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == root1 and sr == root2 and sn == 0


# -- signed tree heads --------------------------------------------------------------------------

STH_DOMAIN = b"CRM-STH-V1"


def tree_head_signing_input(log: str, tree_size: int, timestamp_ms: int, root_hash: bytes) -> bytes:
    """The bytes an Ed25519 tree-head signature covers (see SignedTreeHead in integrity.proto).

    "CRM-STH-V1" || uint16be(len(log)) || log || uint64be(tree_size) || uint64be(timestamp_ms)
    || root_hash; the domain string keeps the signature from being valid for anything else.
    """
    name = log.encode()
    if len(name) > 0xFFFF or not _is_hash(root_hash):
        raise ValueError("log name longer than 65535 bytes or root hash not 32 bytes")
    return (
        STH_DOMAIN
        + struct.pack(">H", len(name))
        + name
        + struct.pack(">QQ", tree_size, timestamp_ms)
        + root_hash
    )

"""RFC 6962 core: hand-built and published vectors, reference proofs, verifiers, bit flips."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm.merkle import (
    EMPTY_ROOT,
    StreamingRoot,
    consistency_proof,
    inclusion_path,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    root_of,
    split_point,
    tree_head_signing_input,
    verify_consistency,
    verify_inclusion,
)

# The test leaves of RFC 6962 implementations (certificate-transparency, transparency-dev).
LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
HASHES = [leaf_hash(d) for d in LEAVES]
# Published roots of the first n of those leaves (certificate-transparency merkle tests).
PUBLISHED_ROOTS = {
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
PUBLISHED_CONSISTENCY = {
    (1, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (6, 8): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 5): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
}
NO_DB = settings(database=None, deadline=None)


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def test_hashes_are_the_rfc_definitions() -> None:
    assert sha(b"") == EMPTY_ROOT
    assert root_of([]) == sha(b"")
    assert leaf_hash(b"abc") == sha(b"\x00abc")
    assert node_hash(b"L" * 32, b"R" * 32) == sha(b"\x01" + b"L" * 32 + b"R" * 32)


def test_small_roots_built_by_hand() -> None:
    a, b, c, d, e, f, g = (leaf_hash(bytes([i])) for i in range(7))
    ab, cd, ef = node_hash(a, b), node_hash(c, d), node_hash(e, f)
    abcd = node_hash(ab, cd)
    hand = {
        1: a,
        2: ab,
        3: node_hash(ab, c),  # split at 2: [a b] [c]
        4: abcd,
        5: node_hash(abcd, e),  # split at 4, the right side is a single leaf
        6: node_hash(abcd, ef),
        7: node_hash(abcd, node_hash(ef, g)),  # right side of 3 splits at 2 again
    }
    for n, expected in hand.items():
        assert root_of([bytes([i]) for i in range(n)]) == expected, n


def test_published_roots() -> None:
    for n, root in PUBLISHED_ROOTS.items():
        assert root_of(LEAVES[:n]).hex() == root


def test_reference_proofs_match_published_vectors() -> None:
    for (m, n), proof in PUBLISHED_CONSISTENCY.items():
        assert [h.hex() for h in consistency_proof(HASHES[:n], m)] == proof
        root1, root2 = (bytes.fromhex(PUBLISHED_ROOTS[s]) for s in (m, n))
        assert verify_consistency(m, n, root1, root2, [bytes.fromhex(h) for h in proof])
    # Inclusion of leaf 0 in 8 is the same three hashes as the 1 -> 8 consistency proof.
    assert [h.hex() for h in inclusion_path(HASHES, 0)] == PUBLISHED_CONSISTENCY[(1, 8)]


def test_reference_proofs_by_hand() -> None:
    a, b, c, d, e = HASHES[:5]
    ab, cd = node_hash(a, b), node_hash(c, d)
    assert inclusion_path(HASHES[:5], 2) == [d, ab, e]
    assert inclusion_path(HASHES[:5], 4) == [node_hash(ab, cd)]
    assert inclusion_path(HASHES[:3], 2) == [ab]
    assert consistency_proof(HASHES[:5], 3) == [c, d, ab, e]
    assert consistency_proof(HASHES[:4], 2) == [cd]
    assert consistency_proof(HASHES[:4], 4) == []


def test_split_point() -> None:
    assert [split_point(n) for n in range(2, 10)] == [1, 2, 2, 4, 4, 4, 4, 8]
    with pytest.raises(ValueError):
        split_point(1)


def test_streaming_root_reports_completed_subtrees_and_resumes() -> None:
    hashes = [leaf_hash(b"%d" % i) for i in range(13)]
    acc = StreamingRoot()
    completed: list[tuple[int, int, bytes]] = []
    for h in hashes:
        acc.add_leaf_hash(h, completed)
    # 13 leaves complete 6 pairs, 3 quads, 1 octet.
    assert sorted((lvl, idx) for lvl, idx, _ in completed) == sorted(
        [(1, i) for i in range(6)] + [(2, i) for i in range(3)] + [(3, 0)]
    )
    for level, index, h in completed:
        width = 1 << level
        assert h == root_from_leaf_hashes(hashes[index * width : (index + 1) * width])
    # Resuming from the subtree roots of size 13 (8 + 4 + 1) continues the same tree.
    frontier = [
        root_from_leaf_hashes(hashes[0:8]),
        root_from_leaf_hashes(hashes[8:12]),
        hashes[12],
    ]
    resumed = StreamingRoot.resume(13, frontier)
    assert resumed.root() == acc.root()
    more = [leaf_hash(b"x%d" % i) for i in range(9)]
    for h in more:
        resumed.add_leaf_hash(h)
    assert resumed.root() == root_from_leaf_hashes(hashes + more)
    with pytest.raises(ValueError):
        StreamingRoot.resume(13, frontier[:2])


def test_verifiers_reject_malformed_input() -> None:
    root = root_from_leaf_hashes(HASHES)
    path = inclusion_path(HASHES, 3)
    assert verify_inclusion(HASHES[3], 3, 8, path, root)
    assert not verify_inclusion(HASHES[3], 8, 8, path, root)  # index out of range
    # A path only pins the tree's shape along it (sizes 5..8 share leaf 3's path shape), which
    # is why clients take size and root together from a signed head; a different shape fails.
    assert not verify_inclusion(HASHES[3], 3, 4, path, root)
    assert not verify_inclusion(HASHES[3], 2, 8, path, root)  # wrong index
    assert not verify_inclusion(HASHES[3], 3, 8, path[:-1], root)  # short path
    assert not verify_inclusion(HASHES[3], 3, 8, [*path, root], root)  # long path
    assert not verify_inclusion(HASHES[3][:31], 3, 8, path, root)  # malformed hash
    proof = consistency_proof(HASHES, 3)
    root3 = root_from_leaf_hashes(HASHES[:3])
    assert verify_consistency(3, 8, root3, root, proof)
    assert not verify_consistency(8, 3, root, root3, proof)  # size1 > size2
    assert not verify_consistency(3, 8, root3, root, proof[:-1])
    assert not verify_consistency(3, 8, root3, root, [*proof, root])
    assert not verify_consistency(3, 8, root3, root, [])
    assert verify_consistency(8, 8, root, root, [])
    assert not verify_consistency(8, 8, root, root3, [])
    assert not verify_consistency(8, 8, root, root, [root])
    assert verify_consistency(0, 8, EMPTY_ROOT, root, [])
    assert not verify_consistency(0, 8, root3, root, [])


def test_every_reference_proof_verifies_up_to_64_leaves() -> None:
    hashes = [leaf_hash(b"leaf %d" % i) for i in range(64)]
    for n in range(1, 65):
        root = root_from_leaf_hashes(hashes[:n])
        for i in range(n):
            assert verify_inclusion(hashes[i], i, n, inclusion_path(hashes[:n], i), root)
        for m in range(1, n + 1):
            old = root_from_leaf_hashes(hashes[:m])
            assert verify_consistency(m, n, old, root, consistency_proof(hashes[:n], m))


def flips(value: bytes) -> list[bytes]:
    """`value` with each one of its bits flipped in turn."""
    out = []
    for bit in range(len(value) * 8):
        changed = bytearray(value)
        changed[bit // 8] ^= 1 << (bit % 8)
        out.append(bytes(changed))
    return out


@NO_DB
@given(st.data())
def test_inclusion_fails_on_any_flipped_bit(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 300), label="tree size")
    index = data.draw(st.integers(0, n - 1), label="index")
    leaves = [b"row %d" % i for i in range(n)]
    hashes = [leaf_hash(d) for d in leaves]
    root = root_from_leaf_hashes(hashes)
    path = inclusion_path(hashes, index)
    assert verify_inclusion(hashes[index], index, n, path, root)
    for leaf in flips(leaves[index]):
        assert not verify_inclusion(leaf_hash(leaf), index, n, path, root)
    for bad_root in flips(root):
        assert not verify_inclusion(hashes[index], index, n, path, bad_root)
    for k, element in enumerate(path):
        for bad in flips(element):
            assert not verify_inclusion(
                hashes[index], index, n, [*path[:k], bad, *path[k + 1 :]], root
            )


@NO_DB
@given(st.data())
def test_consistency_fails_on_any_flipped_bit(data: st.DataObject) -> None:
    n = data.draw(st.integers(2, 300), label="new size")
    m = data.draw(st.integers(1, n - 1), label="old size")
    hashes = [leaf_hash(b"row %d" % i) for i in range(n)]
    old, new = root_from_leaf_hashes(hashes[:m]), root_from_leaf_hashes(hashes)
    proof = consistency_proof(hashes, m)
    assert verify_consistency(m, n, old, new, proof)
    for bad in flips(old):
        assert not verify_consistency(m, n, bad, new, proof)
    for bad in flips(new):
        assert not verify_consistency(m, n, old, bad, proof)
    for k, element in enumerate(proof):
        for bad in flips(element):
            assert not verify_consistency(m, n, old, new, [*proof[:k], bad, *proof[k + 1 :]])


def test_tree_head_signing_input_layout() -> None:
    root = bytes(range(32))
    message = tree_head_signing_input("sales", 5, 1_700_000_000_123, root)
    assert message == (
        b"CRM-STH-V1"
        + b"\x00\x05sales"
        + (5).to_bytes(8, "big")
        + (1_700_000_000_123).to_bytes(8, "big")
        + root
    )
    with pytest.raises(ValueError):
        tree_head_signing_input("sales", 5, 0, root[:31])

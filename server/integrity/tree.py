"""Which stored subtree hashes make up each node of an RFC 6962 proof.

A log stores the hash of every perfect subtree (level, index) once appends complete it: the
subtree covering leaves [index * 2**level, (index + 1) * 2**level). Every node of PATH and
PROOF is the hash of a range D[start:end] that the RFC's largest-power-of-two recursion
produces; such a range splits into at most log2(n) + 1 perfect subtrees (the binary digits of
its length, largest first), and folding them right to left gives its hash. So a proof reads
O(log n) stored hashes and never touches the leaves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from crm.merkle import node_hash, split_point

NodeKey = tuple[int, int]  # (level, index)
Range = tuple[int, int]  # leaves [start, end)


def perfect_cover(start: int, end: int) -> list[NodeKey]:
    """The perfect subtrees, left to right, whose fold is MTH(D[start:end]) for an RFC range."""
    if not 0 <= start < end:
        raise ValueError(f"empty or negative range [{start}, {end})")
    keys: list[NodeKey] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start & ((1 << level) - 1):
            raise ValueError(f"range [{start}, {end}) is not a subtree of an RFC 6962 tree")
        keys.append((level, start >> level))
        start += 1 << level
    return keys


def fold(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range from its perfect-cover hashes (largest first): fold from the right."""
    node = hashes[-1]
    for left in reversed(hashes[:-1]):
        node = node_hash(left, node)
    return node


def range_hashes(
    ranges: Sequence[Range], fetch: Callable[[list[NodeKey]], Mapping[NodeKey, bytes]]
) -> list[bytes]:
    """MTH of each range, from one `fetch` of the stored perfect-subtree hashes they need."""
    covers = [perfect_cover(start, end) for start, end in ranges]
    nodes = fetch(list(dict.fromkeys(key for cover in covers for key in cover)))
    return [fold([nodes[key] for key in cover]) for cover in covers]


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The ranges whose hashes form PATH(index, D[size]), leaf to root order."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} not in a tree of {size} leaves")
    ranges: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(old_size: int, size: int) -> list[Range]:
    """The ranges whose hashes form PROOF(old_size, D[size]) (empty when the sizes are equal)."""
    if not 0 < old_size <= size:
        raise ValueError(f"old size {old_size} not in 1..{size}")
    ranges: list[Range] = []
    start, end, complete = 0, size, True
    while True:
        if old_size == end:
            if not complete:
                ranges.append((start, end))
            break
        k = split_point(end - start)
        if old_size <= start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            complete = False
    ranges.reverse()
    return ranges

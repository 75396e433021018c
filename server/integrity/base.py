"""What every integrity log store does, whatever holds the rows: one interface, the RFC 6962
logic written once.

A backend (SQLite in `server.integrity.store`, PostgreSQL in `server.integrity.pgstore`) only
supplies the rows: a reader for proofs and a writer for one serialized, atomic append. Appending
resumes the tree from its stored frontier, so any process sharing the rows (a worker, a replica)
extends the tree the last committed append left, never a stale copy of its own.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from crm.merkle import HASH_SIZE, StreamingRoot, leaf_hash
from server.errors import (
    FieldViolation,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    echo,
)
from server.integrity.records import (
    Appended,
    ConsistencyProof,
    InclusionProof,
    StoredLeaf,
    TreeHead,
    log_name,
)
from server.integrity.signer import TreeHeadSigner
from server.integrity.tree import (
    NodeKey,
    consistency_ranges,
    inclusion_ranges,
    perfect_cover,
    range_hashes,
)

MAX_LEAVES_PER_READ = 1000
HeadRow = tuple[int, int, bytes, int, bytes]  # log id, tree size, root, timestamp ms, signature


class LogRows(Protocol):
    """Reads of one backend connection (inside a transaction for a writer)."""

    def head_row(self, name: str) -> HeadRow | None: ...

    def fetch(self, log_id: int, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        """Stored hashes of perfect subtrees (level 0: leaves); raises if one is missing."""
        ...

    def first_index_of(self, log_id: int, h: bytes, size: int) -> int | None:
        """The lowest index below `size` of a leaf with hash `h`, None when there is none."""
        ...

    def data_bytes(self, log_id: int, start: int, end: int) -> int: ...

    def leaf_data(self, log_id: int, start: int, end: int) -> list[tuple[int, bytes]]: ...


class LogWriter(LogRows, Protocol):
    """Writes of one append's transaction: all commit together or not at all."""

    def count_logs(self) -> int: ...

    def create_log(self, name: str) -> int: ...

    def add(
        self,
        log_id: int,
        first: int,
        leaves: Sequence[bytes],
        hashes: Sequence[bytes],
        nodes: Sequence[tuple[int, int, bytes]],
    ) -> None: ...

    def set_head(self, log_id: int, head: TreeHead) -> None: ...


class LogStoreBase(ABC):
    """Append, heads, proofs and leaf reads of named RFC 6962 logs in one namespace."""

    def __init__(
        self,
        signer: TreeHeadSigner,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        max_logs: int | None = None,
        namespace: str = "",
    ) -> None:
        """`max_logs`: logs this namespace may hold (None = no bound); an append that would
        create one more is RESOURCE_EXHAUSTED and writes nothing."""
        self.signer = signer
        self.namespace = namespace
        self._clock_ms = clock_ms
        self._max_logs = max_logs

    # -- what a backend supplies ---------------------------------------------------------------
    @abstractmethod
    def _reading(self) -> AbstractContextManager[LogRows]:
        """Rows to read; every stored row is immutable once committed, so no snapshot needed."""

    @abstractmethod
    def _writing(self, name: str) -> AbstractContextManager[LogWriter]:
        """One transaction, the only append to log `name` in progress anywhere, committed
        (durably) on a clean exit and rolled back on an exception."""

    @abstractmethod
    def close(self) -> None:
        """Release connections; later calls are UNAVAILABLE."""

    # -- writes -------------------------------------------------------------------------------
    def append(self, log: str, leaves: Sequence[bytes]) -> Appended:
        """Append leaves (all or nothing); returns once the new signed head is durable."""
        name = log_name(log)
        if not leaves:
            raise InvalidArgument.field("leaves", "at least one leaf is required")
        hashes = [leaf_hash(data) for data in leaves]
        with self._writing(name) as rows:
            return self._append_in_transaction(rows, name, leaves, hashes)

    def _append_in_transaction(
        self, rows: LogWriter, name: str, leaves: Sequence[bytes], hashes: list[bytes]
    ) -> Appended:
        row = rows.head_row(name)
        if row is None:
            self._check_log_quota(rows)
            log_id, size, last_ms = rows.create_log(name), 0, 0
        else:
            log_id, size, _, last_ms, _ = row
        frontier_keys = perfect_cover(0, size) if size else []
        frontier = rows.fetch(log_id, frontier_keys)
        tree = StreamingRoot.resume(size, [frontier[k] for k in frontier_keys])
        completed: list[tuple[int, int, bytes]] = []
        for h in hashes:
            tree.add_leaf_hash(h, completed)
        rows.add(log_id, size, leaves, hashes, completed)
        root = tree.root()
        timestamp_ms = max(self._clock_ms(), last_ms)  # heads of one log never go back in time
        signature = self.signer.sign(name, tree.size, timestamp_ms, root)
        head = TreeHead(name, tree.size, root, timestamp_ms, signature)
        rows.set_head(log_id, head)
        return Appended(size, head, tuple(hashes))

    def _check_log_quota(self, rows: LogWriter) -> None:
        """Inside the append's transaction; the backend serializes creating logs, so
        concurrent creators (threads, processes, replicas) cannot pass the bound together."""
        if self._max_logs is None:
            return
        count = rows.count_logs()
        if count >= self._max_logs:
            raise ResourceExhausted(
                f"this data dir holds {count} integrity logs, the most allowed"
                f" (--max-integrity-logs {self._max_logs}); append to an existing log",
                subject="integrity_logs",
                description=f"integrity logs per data dir <= {self._max_logs}",
            )

    # -- reads --------------------------------------------------------------------------------
    @staticmethod
    def _head(rows: LogRows, log: str) -> tuple[int, TreeHead]:
        name = log_name(log)
        row = rows.head_row(name)
        if row is None:
            raise NotFound(f"no log named {echo(name)}", "integrity log", name)
        log_id, size, root, timestamp_ms, signature = row
        return log_id, TreeHead(name, size, root, timestamp_ms, signature)

    def tree_head(self, log: str) -> TreeHead:
        with self._reading() as rows:
            return self._head(rows, log)[1]

    def inclusion_proof(
        self,
        log: str,
        *,
        leaf_index: int | None = None,
        leaf_hash: bytes | None = None,
        tree_size: int = 0,
    ) -> InclusionProof:
        """PATH of one leaf (by index, or the first leaf with a hash) in the tree of tree_size
        leaves (0 = the current size)."""
        with self._reading() as rows:
            log_id, head = self._head(rows, log)
            size = _size_within(tree_size, head.tree_size, "tree_size")
            if leaf_hash is not None:
                index = _index_of(rows, log_id, leaf_hash, size)
            elif leaf_index is not None:
                if not 0 <= leaf_index < size:
                    raise InvalidArgument.field(
                        "leaf_index", f"must be below the tree size {size} (got {leaf_index})"
                    )
                index = leaf_index
            else:
                raise InvalidArgument.field("leaf", "set leaf_index or leaf_hash")
            ranges = [(index, index + 1), *inclusion_ranges(index, size), (0, size)]
            hashes = range_hashes(ranges, lambda keys: rows.fetch(log_id, keys))
        return InclusionProof(index, size, hashes[0], tuple(hashes[1:-1]), hashes[-1])

    def consistency_proof(
        self, log: str, first_tree_size: int, second_tree_size: int = 0
    ) -> ConsistencyProof:
        """PROOF(first, D[second]) (second 0 = the current size)."""
        with self._reading() as rows:
            log_id, head = self._head(rows, log)
            second = _size_within(second_tree_size, head.tree_size, "second_tree_size")
            if first_tree_size < 1:
                raise InvalidArgument.field("first_tree_size", "must be at least 1")
            if first_tree_size > second:
                raise InvalidArgument.field(
                    "first_tree_size",
                    f"must not exceed the second tree size {second} (got {first_tree_size})",
                )
            ranges = [(0, first_tree_size), *consistency_ranges(first_tree_size, second)]
            hashes = range_hashes([*ranges, (0, second)], lambda keys: rows.fetch(log_id, keys))
        return ConsistencyProof(first_tree_size, second, tuple(hashes[1:-1]), hashes[0], hashes[-1])

    def leaves(
        self, log: str, start: int, end: int, max_bytes: int | None = None
    ) -> list[StoredLeaf]:
        """Leaves [start, end), at most MAX_LEAVES_PER_READ of them and `max_bytes` of data
        (a response must fit in one gRPC message)."""
        with self._reading() as rows:
            log_id, head = self._head(rows, log)
            if not 0 <= start < head.tree_size:
                raise InvalidArgument.field(
                    "start", f"must be below the tree size {head.tree_size} (got {start})"
                )
            if not start < end <= head.tree_size:
                raise InvalidArgument.field(
                    "end", f"must be in {start + 1}..{head.tree_size} (got {end})"
                )
            if end - start > MAX_LEAVES_PER_READ:
                raise InvalidArgument.field("end", f"at most {MAX_LEAVES_PER_READ} leaves per call")
            if max_bytes is not None:
                size = rows.data_bytes(log_id, start, end)
                if size > max_bytes:
                    raise InvalidArgument.field(
                        "end",
                        f"leaves [{start}, {end}) hold {size} bytes, more than one response"
                        f" carries ({max_bytes}); ask for a shorter range",
                    )
            data = rows.leaf_data(log_id, start, end)
        if len(data) != end - start:
            raise RuntimeError(f"log {head.log!r} is missing leaves in [{start}, {end})")
        return [StoredLeaf(idx, blob, leaf_hash(blob)) for idx, blob in data]


def _index_of(rows: LogRows, log_id: int, h: bytes, size: int) -> int:
    if len(h) != HASH_SIZE:
        raise InvalidArgument.field("leaf_hash", f"must be {HASH_SIZE} bytes (got {len(h)})")
    index = rows.first_index_of(log_id, h, size)
    if index is None or index >= size:
        raise NotFound(f"no leaf with hash {h.hex()} in the first {size} leaves")
    return index


def _size_within(requested: int, current: int, field: str) -> int:
    """A requested tree size (0 = current), refused beyond what the log holds."""
    if requested < 0 or requested > current:
        raise InvalidArgument(
            FieldViolation(field, f"must be at most the log's size {current} (got {requested})")
        )
    return requested or current

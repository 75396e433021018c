"""Persistent RFC 6962 logs in one SQLite database (WAL mode), safe for many handler threads.

Tables: `logs` (one row per named log with its latest signed head), `leaves` (leaf hash and
raw bytes) and `nodes` (the hash of every completed perfect subtree above the leaves, level >=
1). Lookups by leaf hash use an index partitioned by epochs of 65,536 leaves: hashes are random,
so one index over the whole log would have every append dirty (and write to the WAL) pages all
over it, a cost growing with the log; within an epoch an append touches a bounded region. A
lookup then seeks once per epoch (16 seeks at 1M leaves), while proofs stay O(log n).
Appends hold one writer lock and one IMMEDIATE transaction: leaves, new subtree hashes and the
new signed head commit together or not at all. `synchronous=FULL` fsyncs the WAL on every
commit, so a returned append survives power loss, not just a killed process. Reads use one
connection per thread and never block on the writer; stored rows never change, so a proof for
any committed size reads a consistent set of hashes without a long read transaction.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from crm.merkle import HASH_SIZE, StreamingRoot, leaf_hash
from server import sqlite_open
from server.errors import (
    FieldViolation,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
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
    Range,
    consistency_ranges,
    inclusion_ranges,
    perfect_cover,
    range_hashes,
)

DB_FILE = "logs.sqlite3"
MAX_LEAVES_PER_READ = 1000
EPOCH_BITS = 16  # the leaf-hash index is partitioned by idx >> EPOCH_BITS (see above)
WRITER_CACHE_KIB = 32 * 1024  # keeps the current epoch's index and the tables' right edges hot

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    tree_size INTEGER NOT NULL,
    root_hash BLOB NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    signature BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS leaves (
    log_id INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hash BLOB NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (log_id, idx)
) WITHOUT ROWID;
DROP INDEX IF EXISTS leaf_by_hash;
CREATE INDEX IF NOT EXISTS leaf_by_epoch_hash ON leaves (log_id, idx >> {EPOCH_BITS}, substr(hash, 1, 8));
CREATE TABLE IF NOT EXISTS nodes (
    log_id INTEGER NOT NULL,
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (log_id, level, idx)
) WITHOUT ROWID;
"""
# One index seek per epoch, oldest first; CROSS JOIN keeps SQLite from scanning the index.
_FIND_LEAF = f"""
WITH RECURSIVE epoch(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM epoch WHERE n < ?)
SELECT min(idx) FROM epoch CROSS JOIN leaves INDEXED BY leaf_by_epoch_hash
WHERE log_id = ? AND (idx >> {EPOCH_BITS}) = epoch.n AND substr(hash, 1, 8) = ? AND hash = ?
"""


class LogStore:
    def __init__(
        self,
        directory: Path,
        signer: TreeHeadSigner,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        max_logs: int | None = None,
    ) -> None:
        """`max_logs`: logs this database may hold (None = no bound); an append that would
        create one more is RESOURCE_EXHAUSTED and writes nothing."""
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = directory / DB_FILE
        self.signer = signer
        self._max_logs = max_logs
        self._clock_ms = clock_ms
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        with sqlite_open.opening(self.path):
            self._writer = sqlite_open.connect(self.path)
            self._writer.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
            sqlite_open.enable_wal(self._writer, self.path)
            self._writer.executescript(_SCHEMA)

    # -- connections --------------------------------------------------------------------------
    def _reader(self) -> sqlite3.Connection:
        if self._closed:
            raise Unavailable("the integrity log store is shutting down")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            with self._readers_lock:
                if self._closed:
                    raise Unavailable("the integrity log store is shutting down")
                conn = sqlite_open.connect(self.path)
                conn.execute("PRAGMA query_only=ON")
                self._readers.append(conn)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close every connection; an append in progress finishes first, later calls are
        UNAVAILABLE. Call it after the server has drained its in-flight calls."""
        with self._write_lock, self._readers_lock:
            self._closed = True
            for conn in self._readers:
                conn.close()
            self._readers.clear()
            self._writer.close()

    # -- writes -------------------------------------------------------------------------------
    def append(self, log: str, leaves: Sequence[bytes]) -> Appended:
        """Append leaves (all or nothing); returns once the new signed head is durable."""
        name = log_name(log)
        if not leaves:
            raise InvalidArgument.field("leaves", "at least one leaf is required")
        hashes = [leaf_hash(data) for data in leaves]
        with self._write_lock:
            if self._closed:
                raise Unavailable("the integrity log store is shutting down")
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                appended = self._append_in_transaction(conn, name, leaves, hashes)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return appended

    def _append_in_transaction(
        self, conn: sqlite3.Connection, name: str, leaves: Sequence[bytes], hashes: list[bytes]
    ) -> Appended:
        row = conn.execute(
            "SELECT id, tree_size, timestamp_ms FROM logs WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            self._check_log_quota(conn)
            cursor = conn.execute(
                "INSERT INTO logs (name, tree_size, root_hash, timestamp_ms, signature)"
                " VALUES (?, 0, x'', 0, x'')",
                (name,),
            )
            log_id, size, last_ms = cursor.lastrowid, 0, 0
        else:
            log_id, size, last_ms = row
        frontier_keys = perfect_cover(0, size) if size else []
        frontier = self._fetch(conn, log_id, frontier_keys)
        tree = StreamingRoot.resume(size, [frontier[k] for k in frontier_keys])
        completed: list[tuple[int, int, bytes]] = []
        for h in hashes:
            tree.add_leaf_hash(h, completed)
        conn.executemany(
            "INSERT INTO leaves (log_id, idx, hash, data) VALUES (?, ?, ?, ?)",
            (
                (log_id, index, h, data)
                for index, (h, data) in enumerate(zip(hashes, leaves, strict=True), start=size)
            ),
        )
        conn.executemany(
            "INSERT INTO nodes (log_id, level, idx, hash) VALUES (?, ?, ?, ?)",
            ((log_id, level, index, h) for level, index, h in completed),
        )
        root = tree.root()
        timestamp_ms = max(self._clock_ms(), last_ms)  # heads of one log never go back in time
        signature = self.signer.sign(name, tree.size, timestamp_ms, root)
        conn.execute(
            "UPDATE logs SET tree_size = ?, root_hash = ?, timestamp_ms = ?, signature = ?"
            " WHERE id = ?",
            (tree.size, root, timestamp_ms, signature, log_id),
        )
        head = TreeHead(name, tree.size, root, timestamp_ms, signature)
        return Appended(size, head, tuple(hashes))

    def _check_log_quota(self, conn: sqlite3.Connection) -> None:
        """Inside the append's IMMEDIATE transaction, so concurrent creators (threads or
        processes sharing the file) cannot pass the bound together."""
        if self._max_logs is None:
            return
        (count,) = conn.execute("SELECT COUNT(*) FROM logs").fetchone()
        if count >= self._max_logs:
            raise ResourceExhausted(
                f"this data dir holds {count} integrity logs, the most allowed"
                f" (--max-integrity-logs {self._max_logs}); append to an existing log",
                subject="integrity_logs",
                description=f"integrity logs per data dir <= {self._max_logs}",
            )

    # -- reads --------------------------------------------------------------------------------
    def _head(self, conn: sqlite3.Connection, log: str) -> tuple[int, TreeHead]:
        name = log_name(log)
        row = conn.execute(
            "SELECT id, tree_size, root_hash, timestamp_ms, signature FROM logs WHERE name = ?",
            (name,),
        ).fetchone()
        if row is None:
            raise NotFound(f"no log named {echo(name)}", "integrity log", name)
        log_id, size, root, timestamp_ms, signature = row
        return log_id, TreeHead(name, size, root, timestamp_ms, signature)

    def tree_head(self, log: str) -> TreeHead:
        return self._head(self._reader(), log)[1]

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
        conn = self._reader()
        log_id, head = self._head(conn, log)
        size = _size_within(tree_size, head.tree_size, "tree_size")
        if leaf_hash is not None:
            index = self._index_of(conn, log_id, leaf_hash, size)
        elif leaf_index is not None:
            if not 0 <= leaf_index < size:
                raise InvalidArgument.field(
                    "leaf_index", f"must be below the tree size {size} (got {leaf_index})"
                )
            index = leaf_index
        else:
            raise InvalidArgument.field("leaf", "set leaf_index or leaf_hash")
        path_ranges = inclusion_ranges(index, size)
        hashes = self._range_hashes(conn, log_id, [(index, index + 1), *path_ranges, (0, size)])
        return InclusionProof(index, size, hashes[0], tuple(hashes[1:-1]), hashes[-1])

    def _index_of(self, conn: sqlite3.Connection, log_id: int, h: bytes, size: int) -> int:
        if len(h) != HASH_SIZE:
            raise InvalidArgument.field("leaf_hash", f"must be {HASH_SIZE} bytes (got {len(h)})")
        row = conn.execute(_FIND_LEAF, ((size - 1) >> EPOCH_BITS, log_id, h[:8], h)).fetchone()
        if row[0] is None or row[0] >= size:
            raise NotFound(f"no leaf with hash {h.hex()} in the first {size} leaves")
        return int(row[0])

    def consistency_proof(
        self, log: str, first_tree_size: int, second_tree_size: int = 0
    ) -> ConsistencyProof:
        """PROOF(first, D[second]) (second 0 = the current size)."""
        conn = self._reader()
        log_id, head = self._head(conn, log)
        second = _size_within(second_tree_size, head.tree_size, "second_tree_size")
        if first_tree_size < 1:
            raise InvalidArgument.field("first_tree_size", "must be at least 1")
        if first_tree_size > second:
            raise InvalidArgument.field(
                "first_tree_size",
                f"must not exceed the second tree size {second} (got {first_tree_size})",
            )
        ranges = consistency_ranges(first_tree_size, second)
        hashes = self._range_hashes(conn, log_id, [(0, first_tree_size), *ranges, (0, second)])
        return ConsistencyProof(first_tree_size, second, tuple(hashes[1:-1]), hashes[0], hashes[-1])

    def leaves(
        self, log: str, start: int, end: int, max_bytes: int | None = None
    ) -> list[StoredLeaf]:
        """Leaves [start, end), at most MAX_LEAVES_PER_READ of them and `max_bytes` of data
        (a response must fit in one gRPC message)."""
        conn = self._reader()
        log_id, head = self._head(conn, log)
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
            (size,) = conn.execute(
                "SELECT sum(length(data)) FROM leaves WHERE log_id = ? AND idx >= ? AND idx < ?",
                (log_id, start, end),
            ).fetchone()
            if size > max_bytes:
                raise InvalidArgument.field(
                    "end",
                    f"leaves [{start}, {end}) hold {size} bytes, more than one response carries"
                    f" ({max_bytes}); ask for a shorter range",
                )
        rows = conn.execute(
            "SELECT idx, data FROM leaves WHERE log_id = ? AND idx >= ? AND idx < ? ORDER BY idx",
            (log_id, start, end),
        ).fetchall()
        if len(rows) != end - start:
            raise RuntimeError(f"log {head.log!r} is missing leaves in [{start}, {end})")
        return [StoredLeaf(idx, data, leaf_hash(data)) for idx, data in rows]

    # -- stored subtree hashes ----------------------------------------------------------------
    def _range_hashes(
        self, conn: sqlite3.Connection, log_id: int, ranges: Sequence[Range]
    ) -> list[bytes]:
        return range_hashes(ranges, lambda keys: self._fetch(conn, log_id, keys))

    @staticmethod
    def _fetch(
        conn: sqlite3.Connection, log_id: int, keys: Sequence[NodeKey]
    ) -> dict[NodeKey, bytes]:
        nodes: dict[NodeKey, bytes] = {}
        for key in keys:
            level, index = key
            row = conn.execute(
                "SELECT hash FROM leaves WHERE log_id = ? AND idx = ?"
                if level == 0
                else "SELECT hash FROM nodes WHERE log_id = ? AND level = ? AND idx = ?",
                (log_id, index) if level == 0 else (log_id, level, index),
            ).fetchone()
            if row is None:
                raise RuntimeError(f"integrity store is missing subtree {key} of log {log_id}")
            nodes[key] = row[0]
        return nodes


def _size_within(requested: int, current: int, field: str) -> int:
    """A requested tree size (0 = current), refused beyond what the log holds."""
    if requested < 0 or requested > current:
        raise InvalidArgument(
            FieldViolation(field, f"must be at most the log's size {current} (got {requested})")
        )
    return requested or current

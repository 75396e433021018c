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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from server import sqlite_open
from server.errors import Unavailable
from server.integrity.base import MAX_LEAVES_PER_READ, HeadRow, LogStoreBase
from server.integrity.records import TreeHead
from server.integrity.signer import TreeHeadSigner
from server.integrity.tree import NodeKey

__all__ = ["DB_FILE", "EPOCH_BITS", "MAX_LEAVES_PER_READ", "LogStore"]

DB_FILE = "logs.sqlite3"
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


class _SqliteRows:
    """The rows of one connection (the writer's inside its IMMEDIATE transaction)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def head_row(self, name: str) -> HeadRow | None:
        return self.conn.execute(
            "SELECT id, tree_size, root_hash, timestamp_ms, signature FROM logs WHERE name = ?",
            (name,),
        ).fetchone()

    def fetch(self, log_id: int, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        nodes: dict[NodeKey, bytes] = {}
        for key in keys:
            level, index = key
            row = self.conn.execute(
                "SELECT hash FROM leaves WHERE log_id = ? AND idx = ?"
                if level == 0
                else "SELECT hash FROM nodes WHERE log_id = ? AND level = ? AND idx = ?",
                (log_id, index) if level == 0 else (log_id, level, index),
            ).fetchone()
            if row is None:
                raise RuntimeError(f"integrity store is missing subtree {key} of log {log_id}")
            nodes[key] = row[0]
        return nodes

    def first_index_of(self, log_id: int, h: bytes, size: int) -> int | None:
        row = self.conn.execute(_FIND_LEAF, ((size - 1) >> EPOCH_BITS, log_id, h[:8], h))
        found = row.fetchone()[0]
        return None if found is None else int(found)

    def data_bytes(self, log_id: int, start: int, end: int) -> int:
        (size,) = self.conn.execute(
            "SELECT sum(length(data)) FROM leaves WHERE log_id = ? AND idx >= ? AND idx < ?",
            (log_id, start, end),
        ).fetchone()
        return int(size or 0)

    def leaf_data(self, log_id: int, start: int, end: int) -> list[tuple[int, bytes]]:
        return self.conn.execute(
            "SELECT idx, data FROM leaves WHERE log_id = ? AND idx >= ? AND idx < ? ORDER BY idx",
            (log_id, start, end),
        ).fetchall()

    def count_logs(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM logs").fetchone()[0])

    def create_log(self, name: str) -> int:
        cursor = self.conn.execute(
            "INSERT INTO logs (name, tree_size, root_hash, timestamp_ms, signature)"
            " VALUES (?, 0, x'', 0, x'')",
            (name,),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def add(
        self,
        log_id: int,
        first: int,
        leaves: Sequence[bytes],
        hashes: Sequence[bytes],
        nodes: Sequence[tuple[int, int, bytes]],
    ) -> None:
        self.conn.executemany(
            "INSERT INTO leaves (log_id, idx, hash, data) VALUES (?, ?, ?, ?)",
            (
                (log_id, index, h, data)
                for index, (h, data) in enumerate(zip(hashes, leaves, strict=True), start=first)
            ),
        )
        self.conn.executemany(
            "INSERT INTO nodes (log_id, level, idx, hash) VALUES (?, ?, ?, ?)",
            ((log_id, level, index, h) for level, index, h in nodes),
        )

    def set_head(self, log_id: int, head: TreeHead) -> None:
        self.conn.execute(
            "UPDATE logs SET tree_size = ?, root_hash = ?, timestamp_ms = ?, signature = ?"
            " WHERE id = ?",
            (head.tree_size, head.root_hash, head.timestamp_ms, head.signature, log_id),
        )


class LogStore(LogStoreBase):
    """The embedded default: one SQLite file per data dir (a tenant's data dir is its own
    namespace, so `namespace` needs no column here)."""

    def __init__(
        self,
        directory: Path,
        signer: TreeHeadSigner,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        max_logs: int | None = None,
        namespace: str = "",
    ) -> None:
        super().__init__(signer, clock_ms, max_logs, namespace)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = directory / DB_FILE
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

    @contextmanager
    def _reading(self) -> Iterator[_SqliteRows]:
        yield _SqliteRows(self._reader())

    @contextmanager
    def _writing(self, name: str) -> Iterator[_SqliteRows]:
        """One writer lock per process, and SQLite's IMMEDIATE lock across processes."""
        with self._write_lock:
            if self._closed:
                raise Unavailable("the integrity log store is shutting down")
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteRows(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        """Close every connection; an append in progress finishes first, later calls are
        UNAVAILABLE. Call it after the server has drained its in-flight calls."""
        with self._write_lock, self._readers_lock:
            self._closed = True
            for conn in self._readers:
                conn.close()
            self._readers.clear()
            self._writer.close()

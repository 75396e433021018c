"""Integrity logs in PostgreSQL, shared by every replica on the database.

Appends to one log are serialized across replicas by a transaction-scoped advisory lock on the
(namespace, log) pair: the append reads the frontier the last commit left, writes leaves (COPY),
completed subtree hashes and the signed head, and commits before the reply; the lock ends with
the transaction, so a killed replica never leaves it held. Creating a log also takes the
namespace's lock, so replicas cannot pass --max-integrity-logs together. Reads are single
autocommit statements: committed rows never change.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import psycopg

from server.integrity.base import HeadRow, LogStoreBase
from server.integrity.records import TreeHead
from server.integrity.signer import TreeHeadSigner
from server.integrity.tree import NodeKey
from server.postgres import pool as pg_pool

_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
_FETCH = """
SELECT 0, idx, hash FROM integrity_leaves WHERE log_id = %(log)s AND idx = ANY(%(leaves)s)
UNION ALL
SELECT n.level, n.idx, n.hash FROM integrity_nodes n
JOIN unnest(%(levels)s::integer[], %(indexes)s::bigint[]) AS k(level, idx)
  ON n.level = k.level AND n.idx = k.idx
WHERE n.log_id = %(log)s
"""


class _PgRows:
    """The rows of one namespace through one connection."""

    def __init__(self, conn: psycopg.Connection, namespace: str) -> None:
        self.conn = conn
        self.namespace = namespace

    def head_row(self, name: str) -> HeadRow | None:
        return self.conn.execute(
            "SELECT id, tree_size, root_hash, timestamp_ms, signature FROM integrity_logs"
            " WHERE namespace = %s AND name = %s",
            (self.namespace, name),
        ).fetchone()

    def fetch(self, log_id: int, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        if not keys:
            return {}
        inner = [(level, index) for level, index in keys if level]
        rows = self.conn.execute(
            _FETCH,
            {
                "log": log_id,
                "leaves": [index for level, index in keys if not level],
                "levels": [level for level, _ in inner],
                "indexes": [index for _, index in inner],
            },
        ).fetchall()
        nodes = {(int(level), int(index)): bytes(h) for level, index, h in rows}
        missing = [key for key in keys if key not in nodes]
        if missing:
            raise RuntimeError(f"integrity store is missing subtrees {missing} of log {log_id}")
        return nodes

    def first_index_of(self, log_id: int, h: bytes, size: int) -> int | None:
        row = self.conn.execute(
            "SELECT min(idx) FROM integrity_leaves WHERE log_id = %s AND hash = %s AND idx < %s",
            (log_id, h, size),
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def data_bytes(self, log_id: int, start: int, end: int) -> int:
        row = self.conn.execute(
            "SELECT coalesce(sum(length(data)), 0) FROM integrity_leaves"
            " WHERE log_id = %s AND idx >= %s AND idx < %s",
            (log_id, start, end),
        ).fetchone()
        return int(row[0]) if row else 0

    def leaf_data(self, log_id: int, start: int, end: int) -> list[tuple[int, bytes]]:
        rows = self.conn.execute(
            "SELECT idx, data FROM integrity_leaves WHERE log_id = %s AND idx >= %s AND idx < %s"
            " ORDER BY idx",
            (log_id, start, end),
        ).fetchall()
        return [(int(idx), bytes(data)) for idx, data in rows]

    def count_logs(self) -> int:
        """Under the namespace's lock: one creator at a time checks and creates."""
        self.conn.execute(_LOCK, (f"integrity-logs\x1f{self.namespace}",))
        row = self.conn.execute(
            "SELECT count(*) FROM integrity_logs WHERE namespace = %s", (self.namespace,)
        ).fetchone()
        return int(row[0]) if row else 0

    def create_log(self, name: str) -> int:
        row = self.conn.execute(
            "INSERT INTO integrity_logs (namespace, name, tree_size, root_hash, timestamp_ms,"
            " signature) VALUES (%s, %s, 0, '', 0, '') RETURNING id",
            (self.namespace, name),
        ).fetchone()
        assert row is not None
        return int(row[0])

    def add(
        self,
        log_id: int,
        first: int,
        leaves: Sequence[bytes],
        hashes: Sequence[bytes],
        nodes: Sequence[tuple[int, int, bytes]],
    ) -> None:
        with self.conn.cursor() as cur:
            with cur.copy("COPY integrity_leaves (log_id, idx, hash, data) FROM STDIN") as copy:
                for index, (h, data) in enumerate(zip(hashes, leaves, strict=True), start=first):
                    copy.write_row((log_id, index, h, data))
            if nodes:
                with cur.copy("COPY integrity_nodes (log_id, level, idx, hash) FROM STDIN") as copy:
                    for level, index, h in nodes:
                        copy.write_row((log_id, level, index, h))

    def set_head(self, log_id: int, head: TreeHead) -> None:
        self.conn.execute(
            "UPDATE integrity_logs SET tree_size = %s, root_hash = %s, timestamp_ms = %s,"
            " signature = %s WHERE id = %s",
            (head.tree_size, head.root_hash, head.timestamp_ms, head.signature, log_id),
        )


class PgLogStore(LogStoreBase):
    """Logs of one namespace (tenant) in a PostgreSQL database other replicas share."""

    def __init__(
        self,
        url: str,
        signer: TreeHeadSigner,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        max_logs: int | None = None,
        namespace: str = "",
    ) -> None:
        super().__init__(signer, clock_ms, max_logs, namespace)
        self._pool = pg_pool.PoolUser(url, "integrity log store")

    @contextmanager
    def _reading(self) -> Iterator[_PgRows]:
        with self._pool.connection() as conn:
            yield _PgRows(conn, self.namespace)

    @contextmanager
    def _writing(self, name: str) -> Iterator[_PgRows]:
        with self._pool.connection() as conn, conn.transaction():
            conn.execute(_LOCK, (f"integrity\x1f{self.namespace}\x1f{name}",))
            yield _PgRows(conn, self.namespace)

    def close(self) -> None:
        self._pool.close()

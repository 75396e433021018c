"""Ingested lines in the PostgreSQL database replicas share: every replica applies the same
lines in the same order, so every replica scores from the same state.

Appends of one namespace take a transaction-scoped advisory lock, so sequence numbers follow
commit order and a replica reading "after my last sequence" never skips a late commit; the
batch commits before the reply.
"""

from __future__ import annotations

from collections.abc import Sequence

from server.freshness.lines import COLUMNS, Appended, LineStoreBase, StoredLine, store_batch
from server.postgres import pool as pg_pool

_COLS = ", ".join(COLUMNS)


class PgLineStore(LineStoreBase):
    def __init__(self, url: str, namespace: str = "") -> None:
        self.namespace = namespace
        self._pool = pg_pool.PoolUser(url, "transaction line store")

    def append(self, lines: Sequence[StoredLine]) -> Appended:
        with self._pool.connection() as conn, conn.transaction():
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                (f"transaction_lines\x1f{self.namespace}",),
            )

            def stored(line: StoredLine) -> StoredLine | None:
                row = conn.execute(
                    f"SELECT {_COLS} FROM transaction_lines WHERE namespace = %s"
                    " AND invoice = %s AND line_number = %s",
                    (self.namespace, line.invoice, line.line_number),
                ).fetchone()
                return None if row is None else StoredLine(*row)

            def insert(line: StoredLine) -> None:
                conn.execute(
                    f"INSERT INTO transaction_lines (namespace, {_COLS}) VALUES "
                    f"(%s, {', '.join(['%s'] * len(COLUMNS))})",
                    (self.namespace, *(getattr(line, c) for c in COLUMNS)),
                )

            return store_batch(lines, stored, insert)  # LineConflict rolls the batch back

    def after(self, seq: int, limit: int) -> list[tuple[int, StoredLine]]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT seq, {_COLS} FROM transaction_lines WHERE namespace = %s AND seq > %s"
                " ORDER BY seq LIMIT %s",
                (self.namespace, seq, limit),
            ).fetchall()
        return [(int(r[0]), StoredLine(*r[1:])) for r in rows]

    def close(self) -> None:
        self._pool.close()

"""Ingested lines in an SQLite file under --data-dir (WAL, synchronous=FULL): an acknowledged
batch survives kill -9 and a power cut."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from server import sqlite_open
from server.freshness.lines import COLUMNS, Appended, LineStoreBase, StoredLine, store_batch

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS lines (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace TEXT NOT NULL,
    {", ".join(f"{c} {'INTEGER' if c in ('line_number', 'invoice_date_ns', 'ingested_at_ns') else 'REAL' if c in ('quantity', 'price') else 'TEXT'} NOT NULL" for c in COLUMNS)},
    UNIQUE (namespace, invoice, line_number)
)
"""
_COLS = ", ".join(COLUMNS)


class SqliteLineStore(LineStoreBase):
    def __init__(self, path: Path, namespace: str = "") -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.namespace = namespace
        self._lock = threading.Lock()
        with sqlite_open.opening(path):
            self._conn = sqlite_open.connect(path)
            sqlite_open.enable_wal(self._conn, path)
            self._conn.execute(_SCHEMA)

    def append(self, lines: Sequence[StoredLine]) -> Appended:
        conn = self._conn

        def stored(line: StoredLine) -> StoredLine | None:
            row = conn.execute(
                f"SELECT {_COLS} FROM lines WHERE namespace=? AND invoice=? AND line_number=?",
                (self.namespace, line.invoice, line.line_number),
            ).fetchone()
            return None if row is None else StoredLine(*row)

        def insert(line: StoredLine) -> None:
            conn.execute(
                f"INSERT INTO lines (namespace, {_COLS}) VALUES "
                f"(?, {', '.join('?' * len(COLUMNS))})",
                (self.namespace, *(getattr(line, c) for c in COLUMNS)),
            )

        with self._lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                appended = store_batch(lines, stored, insert)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return appended

    def after(self, seq: int, limit: int) -> list[tuple[int, StoredLine]]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT seq, {_COLS} FROM lines WHERE namespace=? AND seq>? ORDER BY seq LIMIT ?",
                (self.namespace, seq, limit),
            ).fetchall()
        return [(int(r[0]), StoredLine(*r[1:])) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

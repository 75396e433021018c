"""Opening a shared SQLite file safely when several worker processes start at once.

Switching a fresh database to WAL and creating its schema need an exclusive lock, and SQLite
answers "database is locked" at once (without waiting on busy_timeout) when two processes do it
together. An advisory lock on a sibling file serialises that first open across processes; after
it, WAL lets the workers read and write side by side.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT_MS = 10_000


@contextmanager
def opening(path: Path) -> Iterator[None]:
    """Hold the cross-process open lock for `path` (blocks while another process holds it)."""
    fd = os.open(path.with_name(f".{path.name}.open-lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def connect(path: Path) -> sqlite3.Connection:
    """An autocommit connection usable from any thread, waiting up to BUSY_TIMEOUT_MS on locks,
    fsyncing every commit (synchronous=FULL)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def enable_wal(conn: sqlite3.Connection, path: Path) -> None:
    """Switch to WAL (call under `opening`); raises if SQLite refuses."""
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise RuntimeError(f"{path}: SQLite refused WAL mode ({mode})")


def open_store(path: Path, schema: str, schema_version: int, what: str) -> sqlite3.Connection:
    """A store's file opened as `connect` does, in WAL mode, with `schema` created and its
    version stamped on first open; refuses a file of another schema version (`what` names
    the store in that error)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with opening(path):
        db = connect(path)
        enable_wal(db, path)
        db.execute(schema)
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            db.execute(f"PRAGMA user_version = {schema_version}")
        elif version != schema_version:
            db.close()
            raise RuntimeError(f"{path}: {what} schema {version} is not supported")
    return db

"""Which version each model serves when a call names none, as chosen at run time
(SetDefaultVersion), kept where the server's other stores are so the choice survives restarts.

The embedded default is one SQLite file in the data dir (a tenant's data dir is its own
namespace); with --store-url the rows live in PostgreSQL (server.postgres.defaults), keyed by
namespace, so replicas sharing the database agree. The registry reads the whole table on every
reload tick: that is how a choice made through one worker or replica reaches the others.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from pathlib import Path

from server import sqlite_open

DEFAULTS_FILE = "model_defaults.sqlite3"
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS model_defaults (
    model TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    set_at TEXT NOT NULL
)
"""


class DefaultStoreBase(ABC):
    """One namespace's chosen default versions, model name -> version."""

    @abstractmethod
    def all(self) -> dict[str, int]: ...

    @abstractmethod
    def set(self, model: str, version: int) -> None: ...

    @abstractmethod
    def clear(self, model: str) -> None: ...

    @abstractmethod
    def close(self) -> None: ...


class MemoryDefaultStore(DefaultStoreBase):
    """Choices that last as long as the process: for registries built without a data dir
    (the batch scorer, tests of the registry alone); the server always persists."""

    def __init__(self) -> None:
        self._chosen: dict[str, int] = {}

    def all(self) -> dict[str, int]:
        return dict(self._chosen)

    def set(self, model: str, version: int) -> None:
        self._chosen[model] = version

    def clear(self, model: str) -> None:
        self._chosen.pop(model, None)

    def close(self) -> None:
        pass


class DefaultStore(DefaultStoreBase):
    """The embedded store: a SQLite file (WAL) every worker process of the data dir shares."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite_open.open_store(path, _SCHEMA, SCHEMA_VERSION, "model defaults store")

    def all(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT model, version FROM model_defaults").fetchall()
        return {str(model): int(version) for model, version in rows}

    def set(self, model: str, version: int) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO model_defaults (model, version, set_at) VALUES (?, ?, ?)"
                " ON CONFLICT (model) DO UPDATE SET version = excluded.version,"
                " set_at = excluded.set_at",
                (model, version, datetime.now(UTC).isoformat()),
            )

    def clear(self, model: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM model_defaults WHERE model = ?", (model,))

    def close(self) -> None:
        with self._lock:
            self._db.close()

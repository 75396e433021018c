"""Chosen default model versions in PostgreSQL, shared by every replica on the database.

Each replica's registry reads its namespace's rows on every reload tick, so a choice made on
one replica is served by the others within one --reload-interval-seconds.
"""

from __future__ import annotations

from server.models.defaults import DefaultStoreBase
from server.postgres import pool as pg_pool


class PgDefaultStore(DefaultStoreBase):
    """One namespace's (tenant's) chosen default versions in a database replicas share."""

    def __init__(self, url: str, namespace: str = "") -> None:
        self.namespace = namespace
        self._pool = pg_pool.PoolUser(url, "model defaults store")

    def all(self) -> dict[str, int]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT model, version FROM model_defaults WHERE namespace = %s",
                (self.namespace,),
            ).fetchall()
        return {str(model): int(version) for model, version in rows}

    def set(self, model: str, version: int) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO model_defaults (namespace, model, version, set_at)"
                " VALUES (%s, %s, %s, now()) ON CONFLICT (namespace, model)"
                " DO UPDATE SET version = excluded.version, set_at = excluded.set_at",
                (self.namespace, model, version),
            )

    def clear(self, model: str) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "DELETE FROM model_defaults WHERE namespace = %s AND model = %s",
                (self.namespace, model),
            )

    def close(self) -> None:
        self._pool.close()

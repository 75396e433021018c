"""Saved campaigns in PostgreSQL, shared by every replica on the database.

Saves of one namespace take a transaction-scoped advisory lock, so the sequence numbers a
namespace's campaigns get follow commit order and page tokens never skip a late commit; the
save commits before the reply.
"""

from __future__ import annotations

from datetime import datetime

from crm.v1 import campaign_pb2
from server.campaign.store import CampaignStoreBase
from server.postgres import pool as pg_pool


class PgCampaignStore(CampaignStoreBase):
    """One namespace's (tenant's) campaigns in a database other replicas share."""

    def __init__(self, url: str, namespace: str = "") -> None:
        super().__init__(namespace)
        self._pool = pg_pool.PoolUser(url, "campaign store")

    def _insert(self, saved: campaign_pb2.SavedCampaign, now: datetime) -> None:
        with self._pool.connection() as conn, conn.transaction():
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                (f"campaigns\x1f{self.namespace}",),
            )
            conn.execute(
                "INSERT INTO campaigns (namespace, id, name, created_at, campaign)"
                " VALUES (%s, %s, %s, %s, %s)",
                (self.namespace, saved.id, saved.name, now, saved.SerializeToString()),
            )

    def _sizes(self, before: int | None, limit: int) -> list[tuple[int, int]]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT seq, length(campaign) FROM campaigns WHERE namespace = %s"
                " AND (%s::bigint IS NULL OR seq < %s) ORDER BY seq DESC LIMIT %s",
                (self.namespace, before, before, limit),
            ).fetchall()
        return [(int(seq), int(length)) for seq, length in rows]

    def _blobs(self, high: int, low: int) -> list[tuple[int, bytes]]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT seq, campaign FROM campaigns WHERE namespace = %s AND seq <= %s"
                " AND seq >= %s ORDER BY seq DESC",
                (self.namespace, high, low),
            ).fetchall()
        return [(int(seq), bytes(blob)) for seq, blob in rows]

    def count(self) -> int:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT count(*) FROM campaigns WHERE namespace = %s", (self.namespace,)
            ).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self._pool.close()

"""Saved campaigns in an embedded SQLite file (WAL), listed newest first with opaque page tokens.

Each campaign is stored as its serialized crm.v1.SavedCampaign next to the columns used to list
it, so what is read back is exactly what was saved. Order is the insertion sequence (not the
wall clock, which can step back). WAL lets several server processes share the file; writes are
synchronous=FULL so a saved campaign survives a power cut, not only a restart.
"""

from __future__ import annotations

import base64
import threading
import uuid
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from pathlib import Path

from crm.v1 import campaign_pb2
from server import sqlite_open

STORE_FILE = "campaigns.sqlite3"
SCHEMA_VERSION = 1
_TOKEN_PREFIX = "c1:"
MAX_SEQ = 2**63 - 1  # SQLite's largest INTEGER: a sequence number is never above it
_SCHEMA = """
CREATE TABLE IF NOT EXISTS campaigns (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    campaign BLOB NOT NULL
)
"""


# A campaign's bytes in a ListCampaigns response besides its own: field tag and length.
FIELD_FRAMING = 6


class BadPageToken(ValueError):
    """A page token this store did not issue."""


def encode_token(seq: int) -> str:
    return base64.urlsafe_b64encode(f"{_TOKEN_PREFIX}{seq}".encode()).decode().rstrip("=")


def decode_token(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        raise BadPageToken("not a page token from ListCampaigns") from None
    number = text.removeprefix(_TOKEN_PREFIX)
    if not text.startswith(_TOKEN_PREFIX) or not number.isdigit():
        raise BadPageToken("not a page token from ListCampaigns")
    if len(number) > len(str(MAX_SEQ)) or int(number) > MAX_SEQ:
        raise BadPageToken("not a page token from ListCampaigns (position out of range)")
    return int(number)


class CampaignStoreBase(ABC):
    """Save and newest-first paging of one namespace's campaigns; a backend stores the rows.

    Sequence numbers must follow commit order within a namespace, so a page token (the last
    sequence listed) never skips a campaign committed later with a smaller number.
    """

    def __init__(self, namespace: str = "") -> None:
        self.namespace = namespace

    @abstractmethod
    def _insert(self, saved: campaign_pb2.SavedCampaign, now: datetime) -> None: ...

    @abstractmethod
    def _sizes(self, before: int | None, limit: int) -> list[tuple[int, int]]:
        """(seq, stored bytes) of the newest `limit` campaigns below `before`, newest first."""

    @abstractmethod
    def _blobs(self, high: int, low: int) -> list[tuple[int, bytes]]:
        """(seq, serialized campaign) with low <= seq <= high, newest first."""

    @abstractmethod
    def count(self) -> int: ...

    @abstractmethod
    def close(self) -> None: ...

    def save(self, campaign: campaign_pb2.SavedCampaign) -> campaign_pb2.SavedCampaign:
        """Stores a copy with a new id and created_at (both set here) and returns it."""
        saved = campaign_pb2.SavedCampaign()
        saved.CopyFrom(campaign)
        saved.id = uuid.uuid4().hex
        now = datetime.now(UTC)
        saved.created_at.FromDatetime(now)
        self._insert(saved, now)
        return saved

    def page(
        self, size: int, token: str = "", max_bytes: int | None = None
    ) -> tuple[list[campaign_pb2.SavedCampaign], str]:
        """Up to `size` campaigns, newest first, after `token`; and the next token ("" at the end).

        With `max_bytes`, the page is also cut where the campaigns' encoded size (as repeated
        fields of one response) would pass it, whatever is stored: a campaign that alone is
        larger (saved under a larger limit) is listed by id, name and time alone, its notes
        saying so. Only the campaigns returned are read.
        """
        before = decode_token(token) if token else None
        sizes = self._sizes(before, size + 1)
        taken, total = 0, 0
        for _, length in sizes[:size]:
            cost = length + FIELD_FRAMING
            if max_bytes is not None and taken and total + cost > max_bytes:
                break
            taken, total = taken + 1, total + cost
        rows = self._blobs(sizes[0][0], sizes[taken - 1][0]) if taken else []
        campaigns = [campaign_pb2.SavedCampaign.FromString(blob) for _, blob in rows]
        if max_bytes is not None and total > max_bytes:  # one campaign, alone too large
            campaigns = [_summary(campaigns[0], total, max_bytes)]
        next_token = encode_token(rows[-1][0]) if len(sizes) > taken else ""
        return campaigns, next_token


class CampaignStore(CampaignStoreBase):
    """The embedded default: one SQLite file per data dir (a tenant's data dir is its own
    namespace). One connection under a lock, so sequence order is commit order."""

    def __init__(self, path: Path, namespace: str = "") -> None:
        super().__init__(namespace)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite_open.open_store(path, _SCHEMA, SCHEMA_VERSION, "campaign store")

    def _insert(self, saved: campaign_pb2.SavedCampaign, now: datetime) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO campaigns (id, name, created_at, campaign) VALUES (?, ?, ?, ?)",
                (saved.id, saved.name, now.isoformat(), saved.SerializeToString()),
            )

    def _sizes(self, before: int | None, limit: int) -> list[tuple[int, int]]:
        with self._lock:
            return self._db.execute(
                "SELECT seq, length(campaign) FROM campaigns WHERE (? IS NULL OR seq < ?) "
                "ORDER BY seq DESC LIMIT ?",
                (before, before, limit),
            ).fetchall()

    def _blobs(self, high: int, low: int) -> list[tuple[int, bytes]]:
        with self._lock:
            return self._db.execute(
                "SELECT seq, campaign FROM campaigns WHERE seq <= ? AND seq >= ? ORDER BY seq DESC",
                (high, low),
            ).fetchall()

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM campaigns").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _summary(
    campaign: campaign_pb2.SavedCampaign, size: int, max_bytes: int
) -> campaign_pb2.SavedCampaign:
    """The campaign's id, name and time only, for a page that cannot carry it whole."""
    return campaign_pb2.SavedCampaign(
        id=campaign.id,
        name=campaign.name,
        created_at=campaign.created_at,
        notes=f"plan, drafts and notes left out: this campaign ({size} bytes) is larger than"
        f" one ListCampaigns response carries ({max_bytes} bytes)",
    )

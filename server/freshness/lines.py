"""Ingested transaction lines: the record a store keeps, the store's interface, and lines as the
frame crm.features reads.

A line's key is (invoice, line_number): storing a key again with the same content is a retry
and counts once; with other content it is refused (the whole batch, nothing stored). Every
stored line gets a sequence number in commit order, so each server process (and replica)
applies exactly the lines it has not seen yet, in order.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import pandas as pd

from crm import features as feat

STORE_FILE = "transactions.sqlite3"


@dataclass(frozen=True)
class StoredLine:
    """One Online Retail II line and its key; `ingested_at_ns` is not part of its content."""

    invoice: str
    line_number: int
    stock_code: str
    description: str
    quantity: float
    invoice_date_ns: int
    price: float
    customer_id: str
    country: str
    category: str
    ingested_at_ns: int = 0

    @property
    def key(self) -> tuple[str, int]:
        return self.invoice, self.line_number

    def content(self) -> tuple:
        return tuple(getattr(self, f.name) for f in fields(self) if f.name != "ingested_at_ns")


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(StoredLine))


class LineConflict(ValueError):
    """Keys already stored with other content: `indexes` are positions in the batch."""

    def __init__(self, indexes: Sequence[int]) -> None:
        super().__init__(f"{len(indexes)} line key(s) already hold other content")
        self.indexes = list(indexes)


@dataclass(frozen=True)
class Appended:
    accepted: list[int]  # batch positions stored now
    duplicates: list[int]  # batch positions already stored with the same content


def store_batch(
    lines: Sequence[StoredLine],
    stored: Callable[[StoredLine], StoredLine | None],
    insert: Callable[[StoredLine], None],
) -> Appended:
    """The append rule every store runs inside its transaction: a new key is inserted, a known
    key with the same content is a duplicate; any key with other content raises LineConflict
    (the caller then rolls the whole batch back)."""
    accepted: list[int] = []
    duplicates: list[int] = []
    conflicts: list[int] = []
    for i, line in enumerate(lines):
        known = stored(line)
        if known is None:
            insert(line)
            accepted.append(i)
        elif known.content() == line.content():
            duplicates.append(i)
        else:
            conflicts.append(i)
    if conflicts:
        raise LineConflict(conflicts)
    return Appended(accepted, duplicates)


class LineStoreBase(ABC):
    """Durable ingested lines of one namespace (tenant): SQLite or PostgreSQL."""

    @abstractmethod
    def append(self, lines: Sequence[StoredLine]) -> Appended:
        """Store `lines` atomically and durably before returning; raises LineConflict."""

    @abstractmethod
    def after(self, seq: int, limit: int) -> list[tuple[int, StoredLine]]:
        """Up to `limit` (sequence, line) with sequence > `seq`, in sequence order."""

    @abstractmethod
    def close(self) -> None: ...

    def all_after(self, seq: int, page: int = 50_000) -> list[tuple[int, StoredLine]]:
        out: list[tuple[int, StoredLine]] = []
        while True:
            got = self.after(seq, page)
            out += got
            if len(got) < page:
                return out
            seq = got[-1][0]


def lines_frame(
    lines: Sequence[Any], date_ns: Callable[[Any], int], customer_id: str | None = None
) -> pd.DataFrame:
    """Transaction lines as the crm.features line frame (one row per line): anything with a
    line's fields (stored lines, request messages), dated by `date_ns`. `customer_id`, when
    given, overrides every line's own id."""
    return pd.DataFrame(
        {
            feat.INVOICE: [line.invoice for line in lines],
            feat.STOCK_CODE: [line.stock_code for line in lines],
            feat.DESCRIPTION: [line.description for line in lines],
            feat.QUANTITY: [line.quantity for line in lines],
            feat.INVOICE_DATE: pd.to_datetime([date_ns(line) for line in lines], unit="ns"),
            feat.PRICE: [line.price for line in lines],
            feat.CUSTOMER_ID: (
                customer_id if customer_id is not None else [line.customer_id for line in lines]
            ),
            feat.COUNTRY: [line.country for line in lines],
            feat.CATEGORY: [line.category for line in lines],
        }
    )


def stored_lines_frame(lines: Sequence[StoredLine]) -> pd.DataFrame:
    """Stored lines as a crm.features lines frame."""
    return lines_frame(lines, _stored_date_ns)


def _stored_date_ns(line: StoredLine) -> int:
    return line.invoice_date_ns

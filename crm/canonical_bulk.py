"""The canonical leaves of many rows at once: encode_row's bytes, built once per distinct value.

A transaction file repeats its values: a million lines hold a few thousand descriptions, prices,
dates and countries. So each column maps raw field text -> its JSON piece (computed by
crm.canonical's own functions, so there is one definition of the encoding), and a row's leaf
is the join of its columns' pieces, with map and zip running the loops in C. A value the
reference refuses raises CanonicalError here too; callers then re-run those rows one by one
through encode_row for the exact message.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import partial

from crm.canonical import (
    canonical_customer_id,
    canonical_datetime,
    canonical_number,
    canonical_text,
)
from crm.columns import EXPORT_COLUMNS, PRICE, QUANTITY
from crm.merkle import LEAF_PREFIX

# Per column (EXPORT_COLUMNS order): raw field text -> canonical text.
_CANONICAL: tuple[Callable[[str], str], ...] = (
    canonical_text,
    canonical_text,
    canonical_text,
    partial(canonical_number, field=QUANTITY),
    canonical_datetime,
    partial(canonical_number, field=PRICE),
    canonical_customer_id,
    canonical_text,
)
# Distinct values remembered per column, and their characters: bounded, so an upload of unique
# values cannot grow memory with the file (the cache starts over; the result never depends on
# it). Online Retail II's 1.07M lines hold ~53k invoices, ~47k dates and ~5k stock codes.
MAX_CACHED = 1 << 18
MAX_CACHED_CHARS = 1 << 24


def _is_plain(value: str) -> bool:
    """Printable ASCII with no quote, backslash or surrounding space: canonical text as it is.

    Invoice numbers are nearly all distinct, so their first (and only) encoding is the common
    case and worth skipping NFC and json.dumps for.
    """
    return (
        value.isascii()
        and value.isprintable()
        and '"' not in value
        and "\\" not in value
        and value.strip() == value
    )


class _Pieces(dict[str, bytes]):
    """Raw text -> the column's bytes in the leaf: separator, JSON string, closing bracket.

    Column 0 also carries the RFC 6962 leaf prefix, so a row's join is the leaf hash input.
    """

    def __init__(self, column: int) -> None:
        super().__init__()
        self._canonical = _CANONICAL[column]
        self._before = LEAF_PREFIX.decode() + "[" if column == 0 else ","
        self._after = "]" if column == len(EXPORT_COLUMNS) - 1 else ""
        self._chars = 0

    def __missing__(self, raw: str) -> bytes:
        # A field split_rows kept quoted: csv.reader's value is inside, with "" for ".
        value = raw[1:-1].replace('""', '"') if raw.startswith('"') else raw
        if self._canonical is canonical_text and _is_plain(value):
            text = f'"{value}"'  # what NFC, strip and JSON escaping leave of it
        else:
            text = json.dumps(self._canonical(value), ensure_ascii=False)
        piece = (self._before + text + self._after).encode()
        self._chars += len(raw) + len(piece)
        if len(self) >= MAX_CACHED or self._chars > MAX_CACHED_CHARS:
            self.clear()
            self._chars = len(raw) + len(piece)
        self[raw] = piece
        return piece


class RowEncoder:
    """Keeps each column's pieces between calls (one per dataset being hashed)."""

    def __init__(self) -> None:
        self._pieces = [_Pieces(column) for column in range(len(EXPORT_COLUMNS))]

    def pieces(self, columns: Sequence[Sequence[str]]) -> list[list[bytes]]:
        """Each column's pieces: joined per row they are LEAF_PREFIX + encode_row(row).

        Rows come column-wise in EXPORT_COLUMNS order, as csv.reader fields (or quoted, as
        split_rows keeps them). Raises CanonicalError for a value encode_row refuses (which row, the
        exact path tells).
        """
        return [list(map(p.__getitem__, col)) for p, col in zip(self._pieces, columns, strict=True)]

"""Dataset lineage: SHA-256 of the raw bytes, RFC 6962 root over canonical rows, row count.

One streaming function serves the training manifest and IntegrityService.HashDataset, so a
dataset hashed by either gives the same three values. Memory stays O(chunk + log n).

Two paths give the same leaves. The exact one takes a line at a time (quote counting, one
csv.reader per record, encode_row per row). The bulk one takes up to BATCH_LINES simple lines
at once (crm.fastpath.split_rows: the header's field count, well-formed quoting, no newline in
a field), encodes them per distinct value (crm.canonical_bulk) and hashes leaves and nodes in
C loops (crm.fastpath, crm.merkle). Any line it cannot vouch for goes through the exact path,
and so do rows with a blank row or a value encode_row refuses among them: the two never differ.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from crm.canonical import CanonicalError, encode_row
from crm.canonical_bulk import RowEncoder
from crm.columns import EXPORT_COLUMNS
from crm.fastpath import hash_rows, split_rows
from crm.merkle import StreamingRoot

CHUNK_BYTES = 1 << 20
# CSV records end only at \r\n, \n or \r; str.splitlines would also break at \x0b, \x0c,
# \x1c-\x1e, \x85, \u2028 and \u2029, which are ordinary characters inside a field.
_LINES = re.compile(r"[^\r\n]*(?:\r\n?|\n)|[^\r\n]+")
# A transaction row is well under a kilobyte. Longer lines or quoted records mean a broken
# file (say, one stray quote): refuse them rather than hold the rest of the stream in memory.
MAX_RECORD_CHARS = 1 << 20
# Lines the bulk path takes at once: large enough that per-batch work is noise, small enough
# that a batch handed to the exact path (a blank row in it) costs little.
BATCH_LINES = 2048


@dataclass(frozen=True)
class DatasetDigest:
    sha256: bytes
    merkle_root: bytes
    rows: int
    bytes: int

    def as_manifest(self) -> dict[str, object]:
        return {
            "sha256": self.sha256.hex(),
            "merkle_root": self.merkle_root.hex(),
            "rows": self.rows,
            "bytes": self.bytes,
            "encoding": "crm.canonical v1",
        }


class DatasetFormatError(ValueError):
    """The stream is not a CSV with the Online Retail II header, or a row cannot be encoded."""


class CsvDigester:
    """Feed raw CSV bytes in chunks of any size; `finish()` returns the digest.

    Complete lines are joined until their double quotes balance, so quoted fields with
    embedded newlines stay one record; nothing else of the file is kept in memory.
    """

    def __init__(self, on_leaf: Callable[[bytes], None] | None = None, bulk: bool = True) -> None:
        """`on_leaf`, if given, sees each row's canonical leaf bytes in order, so a caller can
        log exactly the leaves the Merkle root covers without a second CSV parser.
        `bulk=False` keeps to the exact line-at-a-time path (tests compare the two)."""
        self._on_leaf = on_leaf
        self._encoder = RowEncoder() if bulk else None
        self._width = 0
        self._sha = hashlib.sha256()
        self._root = StreamingRoot()
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._pending = ""
        self._carry: list[str] = []  # lines of a record whose quoted field spans lines
        self._carry_quotes = 0
        self._carry_chars = 0
        self._index: list[int] | None = None
        self._bytes = 0

    def update(self, chunk: bytes) -> None:
        self._sha.update(chunk)
        self._bytes += len(chunk)
        try:
            text = self._pending + self._decoder.decode(chunk)
        except UnicodeDecodeError as err:
            raise DatasetFormatError(f"not UTF-8 text near byte {self._bytes}: {err}") from None
        end = max(text.rfind("\n"), text.rfind("\r")) + 1  # complete lines end here
        self._pending = text[end:]
        if len(self._pending) > MAX_RECORD_CHARS:
            raise DatasetFormatError(f"a line longer than {MAX_RECORD_CHARS} characters")
        if self._encoder is None:
            self._consume(_LINES.findall(text, 0, end))
        else:
            self._consume_text(text, end)

    def _consume_text(self, text: str, end: int) -> None:
        """The complete lines of text[:end]: simple ones in bulk, any other one exactly."""
        pos = 0
        while pos < end:
            stop = pos
            if self._index is not None and not self._carry:
                columns, stop = split_rows(text, pos, end, self._width, BATCH_LINES)
                if stop > pos and not self._add_rows(columns):
                    self._consume(_LINES.findall(text, pos, stop))
            if stop == pos:  # the header, a line of a multi-line record, or an odd line
                line = _LINES.match(text, pos, end)
                assert line is not None
                self._consume([line.group()])
                stop = line.end()
            pos = stop

    def _add_rows(self, columns: list[list[str]]) -> bool:
        """Add rows split by split_rows as the exact path would, or add nothing and say False.

        split_rows only takes lines on which csv.reader gives the same fields; a blank row
        (its Quantity is empty) or a value encode_row refuses leaves the rows to the exact path.
        """
        assert self._encoder is not None and self._index is not None
        try:
            pieces = self._encoder.pieces([columns[i] for i in self._index])
        except CanonicalError:
            return False
        self._root.add_leaf_hashes(hash_rows(pieces))
        if self._on_leaf is not None:
            for data in map(b"".join, zip(*pieces, strict=True)):
                self._on_leaf(data[1:])
        return True

    def _consume(self, lines: Iterable[str]) -> None:
        for line in lines:
            quotes = self._carry_quotes + line.count('"')
            if quotes % 2:  # inside a quoted field: the record goes on
                self._carry.append(line)
                self._carry_quotes = quotes
                self._carry_chars += len(line)
                if self._carry_chars > MAX_RECORD_CHARS:
                    raise DatasetFormatError(
                        f"data row {self._root.size + 1}: a quoted field runs past "
                        f"{MAX_RECORD_CHARS} characters (an unbalanced quote?)"
                    )
                continue
            text = line
            if self._carry:
                text = "".join(self._carry) + line
                self._carry.clear()
                self._carry_quotes = self._carry_chars = 0
            self._add(next(csv.reader([text]), []))

    def _add(self, record: list[str]) -> None:
        if self._index is None:
            header = [h.strip() for h in record]
            missing = [c for c in EXPORT_COLUMNS if c not in header]
            if missing:
                raise DatasetFormatError(f"CSV header lacks column(s): {', '.join(missing)}")
            self._index = [header.index(c) for c in EXPORT_COLUMNS]
            self._width = len(record)
            return
        if not any(field.strip() for field in record):
            return
        try:
            leaf = encode_row([record[i] if i < len(record) else "" for i in self._index])
        except CanonicalError as err:
            raise DatasetFormatError(f"data row {self._root.size + 1}: {err}") from None
        self._root.add(leaf)
        if self._on_leaf is not None:
            self._on_leaf(leaf)

    def finish(self) -> DatasetDigest:
        try:
            tail = self._pending + self._decoder.decode(b"", final=True)
        except UnicodeDecodeError as err:
            raise DatasetFormatError(f"not UTF-8 text at the end: {err}") from None
        self._pending = ""
        if tail:
            self._consume([tail])
        if self._carry:
            raise DatasetFormatError("file ends inside a quoted field")
        if self._index is None:
            raise DatasetFormatError("empty dataset: no CSV header")
        return DatasetDigest(self._sha.digest(), self._root.root(), self._root.size, self._bytes)


def digest_chunks(chunks: Iterable[bytes]) -> DatasetDigest:
    digester = CsvDigester()
    for chunk in chunks:
        digester.update(chunk)
    return digester.finish()


def digest_file(path: str | Path, chunk_bytes: int = CHUNK_BYTES) -> DatasetDigest:
    """Lineage of a CSV file, streamed from disk."""
    with open(path, "rb") as fh:
        return digest_chunks(iter(lambda: fh.read(chunk_bytes), b""))

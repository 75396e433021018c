"""Dataset lineage: SHA-256 of the raw bytes, RFC 6962 root over canonical rows, row count.

One streaming function serves the training manifest and IntegrityService.HashDataset, so a
dataset hashed by either gives the same three values. Memory stays O(line length + log n).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from crm.canonical import COLUMNS, CanonicalError, encode_row
from crm.merkle import StreamingRoot

CHUNK_BYTES = 1 << 20
# CSV records end only at \r\n, \n or \r; str.splitlines would also break at \x0b, \x0c,
# \x1c-\x1e, \x85, \u2028 and \u2029, which are ordinary characters inside a field.
_LINES = re.compile(r"[^\r\n]*(?:\r\n?|\n)|[^\r\n]+")
# A transaction row is well under a kilobyte. Longer lines or quoted records mean a broken
# file (say, one stray quote): refuse them rather than hold the rest of the stream in memory.
MAX_RECORD_CHARS = 1 << 20


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

    def __init__(self, on_leaf: Callable[[bytes], None] | None = None) -> None:
        """`on_leaf`, if given, sees each row's canonical leaf bytes in order, so a caller can
        log exactly the leaves the Merkle root covers without a second CSV parser."""
        self._on_leaf = on_leaf
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
        lines = _LINES.findall(text)
        self._pending = lines.pop() if lines and not lines[-1].endswith(("\n", "\r")) else ""
        if len(self._pending) > MAX_RECORD_CHARS:
            raise DatasetFormatError(f"a line longer than {MAX_RECORD_CHARS} characters")
        self._consume(lines)

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
            missing = [c for c in COLUMNS if c not in header]
            if missing:
                raise DatasetFormatError(f"CSV header lacks column(s): {', '.join(missing)}")
            self._index = [header.index(c) for c in COLUMNS]
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

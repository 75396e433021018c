"""The per-row loops of dataset hashing: C from crm._leaves when it was built, else Python.

`split_rows` cuts the simple CSV lines at the start of a range into fields (column-wise, quoted
fields kept with their quotes), `hash_rows` hashes each row's joined pieces and `perfect_root`
folds 2**k leaf hashes. The Python twins here define what the C must do; tests run both.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache

from crm import merkle

# Field: quoted ("" escapes, no CR, LF or NUL inside) or unquoted (no quote, comma, CR, LF,
# NUL); possessive, so a quoted field ends at the first lone quote exactly as csv.reader's does.
_FIELD = r'("(?:[^"\r\n\x00]|"")*+"|[^",\r\n\x00]*+)'


@cache
def _line(width: int) -> re.Pattern[str]:
    return re.compile(_FIELD + ("," + _FIELD) * (width - 1) + r"\r?\n")


def py_split_rows(
    text: str, pos: int, end: int, width: int, max_rows: int
) -> tuple[list[list[str]], int]:
    """Fields of the simple lines from `pos`: exactly `width` fields, ending in LF or CRLF.

    On such a line csv.reader gives the same fields, unquoted; the caller hands any other line
    (a quoted newline, a stray quote, a lone CR, another width) to the exact path.
    """
    line = _line(width)
    rows = []
    while len(rows) < max_rows:
        match = line.match(text, pos, end)
        if match is None:
            break
        rows.append(match.groups())
        pos = match.end()
    columns = [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]
    return columns, pos


def py_hash_rows(columns: Sequence[Sequence[bytes]]) -> bytes:
    """SHA-256 of each row's pieces joined (the pieces carry the leaf prefix), concatenated."""
    return merkle.hash_each(map(b"".join, zip(*columns, strict=True)))


try:
    from crm._leaves import hash_rows, split_rows
except ImportError:  # not built (no compiler at install time) or no libcrypto
    NATIVE = False
    split_rows, hash_rows = py_split_rows, py_hash_rows
else:
    NATIVE = True

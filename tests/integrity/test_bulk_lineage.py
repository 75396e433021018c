"""The bulk lineage path gives the exact path's bytes and roots, and C and Python twins agree."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm import fastpath, merkle
from crm.canonical import CanonicalError, encode_row
from crm.canonical_bulk import RowEncoder
from crm.columns import EXPORT_COLUMNS
from crm.lineage import CsvDigester, DatasetDigest, DatasetFormatError

HEADER = ",".join(EXPORT_COLUMNS) + "\r\n"
EDGE_FIELDS = [
    "", " ", "  padded  ", "WHITE HANGING HEART T-LIGHT HOLDER", 'say "hi"', "comma, inside",
    "back\\slash", "tab\there", "caf\u00e9", "cafe\u0301", "\u00c5ngstr\u00f6m", "\u2028sep",
    "\x0b\x0cvt", "\x85nel", "emoji \U0001f600", "\x7f", "a\u00a0", "\ufeffbom",
]  # fmt: skip
EDGE_NUMBERS = [
    "6", "-2", "0", "-0.0", "2.50", "1e3", "1E+2", " 7 ", "+3", "0.000001", "1e-7",
    "12345678901234567890123456789012.50", "1e400", "-1e-400", "1e401", "nan", "", "x",
]  # fmt: skip
EDGE_DATES = [
    "2010-12-01 08:26:00", "2010-12-01T08:26", "12/1/2010 8:26", "1/31/2011 17:05:59",
    "2010-12-01", "2010-12-01T08:26:00Z", "2010-12-01T08:26:00+02:00", "2010-12-01 08:26:00.5",
    "2010-02-30 00:00", "not a date", "",
]  # fmt: skip
EDGE_IDS = ["13085.0", "13085", "", "1e3", "1e9999", "abc", "12.5", " 17850 "]


def _digests(data: bytes, chunk: int) -> tuple[object, object]:
    """(bulk, exact) results for the same bytes: a digest or the error message."""
    out = []
    for bulk in (True, False):
        leaves: list[bytes] = []
        digester = CsvDigester(on_leaf=leaves.append, bulk=bulk)
        try:
            for i in range(0, len(data), chunk):
                digester.update(data[i : i + chunk])
            digest: DatasetDigest | str = digester.finish()
        except DatasetFormatError as err:
            digest = f"DatasetFormatError: {err}"
        out.append((digest, leaves))
    return out[0], out[1]


def _csv(rows: list[list[str]], terminator: str = "\r\n") -> str:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator=terminator)
    writer.writerows(rows)
    return buffer.getvalue()


def _random_row(rng: random.Random) -> list[str]:
    return [
        str(rng.randrange(489434, 581587)) if rng.random() < 0.9 else rng.choice(EDGE_FIELDS),
        rng.choice(["85123A", "22041", "POST", *EDGE_FIELDS[:4]]),
        rng.choice(EDGE_FIELDS),
        rng.choice(["1", "6", "12", "-2"] * 6 + EDGE_NUMBERS[:14]),
        rng.choice(["12/1/2010 8:26", "2010-12-01 08:26:00"] * 6 + EDGE_DATES[:8]),
        rng.choice(["2.55", "0.85", "1.25"] * 6 + EDGE_NUMBERS[:14]),
        rng.choice(EDGE_IDS[:6]),
        rng.choice(["United Kingdom", "France", "EIRE", *EDGE_FIELDS[:3]]),
    ]


@pytest.mark.parametrize("seed", range(6))
def test_bulk_equals_exact_on_random_rows(seed: int) -> None:
    rng = random.Random(seed)
    rows = [_random_row(rng) for _ in range(3000)]
    text = HEADER + _csv(rows, rng.choice(["\r\n", "\n"]))
    bulk, exact = _digests(text.encode(), rng.choice([1 << 20, 4096, 777]))
    assert bulk == exact
    digest, leaves = bulk
    assert isinstance(digest, DatasetDigest) and digest.rows == 3000
    assert leaves == [encode_row(r) for r in rows]
    assert digest.merkle_root == merkle.root_of(leaves)


@pytest.mark.parametrize(
    "body",
    [
        "1,A,X,1,2010-12-01 08:26,1.5,13085,UK\n,,,,,,,\n2,B,Y,2,2010-12-01 08:27,2,13086,UK\n",
        "1,A,X,1,2010-12-01 08:26,1.5,13085,UK\n\n\r\n2,B,Y,2,2010-12-01 08:27,2,1,UK",
        '1,A,"two\r\nlines",1,2010-12-01 08:26,1.5,13085,UK\r\n2,B,"x""y",2,2010-12-01,2,,UK\r\n',
        '1,A,a"b,1,2010-12-01 08:26,1.5,13085,UK\n2,B,Y,2,2010-12-01 08:27,2,13086,UK\n',
        '1,A,"ab"c,1,2010-12-01 08:26,1.5,1,UK\n2,B,"Y",2,2010-12-01 08:27,2,13086,UK\n',
        "1,A,X,1,2010-12-01 08:26,1.5,13085,UK\r2,B,Y,2,2010-12-01 08:27,2,13086,UK\r",
        "1,A,X,1,2010-12-01 08:26,1.5,13085\n2,B,Y,2,2010-12-01 08:27,2,13086,UK,extra\n",
        "1,A,X\x00,1,2010-12-01 08:26,1.5,13085,UK\n",
        "1,A,X,,2010-12-01 08:26,1.5,13085,UK\n",  # refused: the error names data row 1
        "1,A,X,1,2010-12-01 08:26,1.5,13085,UK\n2,A,X,1,2010-13-01 08:26,1.5,13085,UK\n",
        '1,A,"unterminated,1,2010-12-01 08:26,1.5,13085,UK\n',
        "\ufeff",
    ],
)
@pytest.mark.parametrize("chunk", [1, 5, 64, 1 << 20])
def test_bulk_equals_exact_on_odd_files(body: str, chunk: int) -> None:
    data = (HEADER + body).encode() if body != "\ufeff" else ("\ufeff" + HEADER).encode()
    bulk, exact = _digests(data, chunk)
    assert bulk == exact


def test_bulk_equals_exact_on_a_header_with_more_columns_in_another_order() -> None:
    header = (
        "Country,Customer ID,Price,Category,InvoiceDate,Quantity,Description,StockCode,Invoice\n"
    )
    rows = "UK,13085.0,2.55,Home,12/1/2010 8:26,6,WHITE HEART,85123A,536365\n" * 5000
    bulk, exact = _digests((header + rows).encode(), 1 << 16)
    assert bulk == exact and bulk[0].rows == 5000  # type: ignore[union-attr]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(
            st.one_of(
                st.text(max_size=12),
                st.sampled_from(EDGE_FIELDS + EDGE_NUMBERS + EDGE_DATES + EDGE_IDS),
            ),
            min_size=8,
            max_size=8,
        ),
        min_size=1,
        max_size=30,
    ),
    st.sampled_from(["\r\n", "\n"]),
)
def test_bulk_equals_exact_on_generated_rows(rows: list[list[str]], terminator: str) -> None:
    data = (HEADER + _csv(rows, terminator)).encode("utf-8", "surrogatepass")
    try:
        data.decode()
    except UnicodeDecodeError:
        return  # not a UTF-8 file: both refuse it before any row
    assert _digests(data, 1 << 20)[0] == _digests(data, 1 << 20)[1]


def test_row_encoder_pieces_join_to_encode_row() -> None:
    encoder = RowEncoder()
    rng = random.Random(7)
    rows = [_random_row(rng) for _ in range(500)]
    good = []
    for row in rows:
        try:
            good.append((row, encode_row(row)))
        except CanonicalError:
            with pytest.raises(CanonicalError):
                encoder.pieces([[v] for v in row])
    columns = [[r[c] for r, _ in good] for c in range(len(EXPORT_COLUMNS))]
    joined = list(map(b"".join, zip(*encoder.pieces(columns), strict=True)))
    assert joined == [merkle.LEAF_PREFIX + leaf for _, leaf in good]


@pytest.mark.parametrize(
    "text",
    [
        'a,"b,c",d\r\n1,2,3\n"",,\n',
        'a,"x""y",c\nq,"r\ns",t\n',
        "a,b,c\rd,e,f\n",
        'a,b,"c"x\nd,e,f\n',
        "a,b\n",
        "caf\u00e9,\u00e9\u00e9,\U0001f600\ncaf\u00e9,\u00e9\u00e9,z\n",
        "a,b,c",
    ],
)
def test_native_split_rows_equals_its_python_twin(text: str) -> None:
    for max_rows in (1, 2, 100):
        assert fastpath.split_rows(text, 0, len(text), 3, max_rows) == fastpath.py_split_rows(
            text, 0, len(text), 3, max_rows
        )


def test_native_hashing_equals_hashlib() -> None:
    rng = random.Random(3)
    columns = [[os.urandom(rng.randrange(0, 90)) for _ in range(257)] for _ in range(3)]
    expected = b"".join(
        hashlib.sha256(b"".join(parts)).digest() for parts in zip(*columns, strict=True)
    )
    assert fastpath.hash_rows(columns) == fastpath.py_hash_rows(columns) == expected
    for count in (1, 2, 4, 1024):
        level = os.urandom(32 * count)
        assert merkle.perfect_root(level) == merkle.py_perfect_root(level)
        assert merkle.perfect_root(level) == merkle.root_from_leaf_hashes(
            level[i : i + 32] for i in range(0, len(level), 32)
        )
    for bad in (b"", os.urandom(96), os.urandom(33)):
        with pytest.raises(ValueError):
            merkle.perfect_root(bad)


def test_bulk_leaf_hashes_build_the_same_tree_at_every_size() -> None:
    rng = random.Random(5)
    leaves = [os.urandom(rng.randrange(0, 70)) for _ in range(1100)]
    tree = merkle.StreamingRoot()
    done = 0
    while done < len(leaves):
        take = rng.randrange(0, 140)
        part = leaves[done : done + take]
        tree.add_leaf_hashes(b"".join(merkle.leaf_hash(d) for d in part))
        done += len(part)
        assert tree.size == done and tree.root() == merkle.root_of(leaves[:done])


def test_the_native_module_is_built() -> None:
    # `make install` compiles crm/_leaves.c; without it hashing falls back to the Python twins.
    assert fastpath.NATIVE

"""Regression tests for the defects fixed in crm.canonical and crm.lineage for HashDataset."""

from __future__ import annotations

import csv
import io

import pytest

from crm.canonical import CanonicalError, canonical_customer_id, canonical_number, encode_row
from crm.lineage import CsvDigester, DatasetFormatError, digest_chunks
from crm.merkle import root_of

HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\r\n"


@pytest.mark.timeout(10, method="thread")
@pytest.mark.parametrize("text", ["1e999999", "1e9999999", "-1E+999999999", "1e-999999"])
def test_absurd_exponents_are_refused_quickly(text: str) -> None:
    # Before: "1e999999" expanded to a megabyte of digits and "1e9999999" raised
    # decimal.Overflow (not a CanonicalError), so HashDataset answered INTERNAL.
    with pytest.raises(CanonicalError) as err:
        canonical_number(text, "Quantity")
    assert err.value.field == "Quantity"


@pytest.mark.timeout(10, method="thread")
def test_absurd_customer_ids_stay_text() -> None:
    # Before: int(Decimal("1e9999999")) ran for minutes; "1e999999" raised a bare ValueError.
    assert canonical_customer_id("1e9999999") == "1e9999999"
    assert canonical_customer_id("1e999999") == "1e999999"
    assert canonical_customer_id("13085.0") == "13085"


def test_numbers_keep_every_significant_digit() -> None:
    # The default decimal context keeps 28 digits; normalising must not round.
    assert canonical_number("12345678901234567890123456789012.50") == (
        "12345678901234567890123456789012.5"
    )
    assert canonical_number("2.50") == "2.5"
    assert canonical_number("1e3") == "1000"
    assert canonical_number("-0.0") == "0"


@pytest.mark.parametrize("odd", ["\u2028", "\u2029", "\x0c", "\x0b", "\x1c", "\x85"])
def test_fields_may_hold_characters_splitlines_breaks_on(odd: str) -> None:
    # Before: str.splitlines cut the record at these, giving a row with missing fields.
    body = f"536365,85123A,BOX{odd}LID,6,12/1/2010 8:26,2.55,17850,United Kingdom\r\n"
    digest = digest_chunks([(HEADER + body).encode()])
    assert digest.rows == 1
    row = next(csv.reader(io.StringIO(body, newline="")))
    assert digest.merkle_root == root_of([encode_row(row)])


def test_chunk_boundaries_do_not_matter() -> None:
    data = (
        HEADER
        + '1,A,"two\r\nlines",1,2010-12-01 08:26:00,1.5,13085.0,UK\r\n'
        + "2,B,PLAIN\u2028TEXT,2,2010-12-01 08:27,0.85,,UK\n"
        + "3,C,LAST,3,2010-12-01T08:28:00,1,12,UK"
    ).encode()
    whole = digest_chunks([data])
    assert whole.rows == 3
    for size in (1, 2, 3, 7, 64):
        assert digest_chunks(data[i : i + size] for i in range(0, len(data), size)) == whole


def test_on_leaf_sees_exactly_the_leaves_of_the_root() -> None:
    data = (
        HEADER
        + "1,A,X,1,2010-12-01 08:26,1.5,13085,UK\n"
        + ",,,,,,,\n"  # a blank row is skipped, not a leaf
        + "2,B,Y,2,2010-12-01 08:27,2,13086,UK\n"
    ).encode()
    leaves: list[bytes] = []
    digester = CsvDigester(on_leaf=leaves.append)
    digester.update(data)
    digest = digester.finish()
    assert digest.rows == len(leaves) == 2
    assert digest.merkle_root == root_of(leaves)
    assert leaves[0] == encode_row(["1", "A", "X", "1", "2010-12-01 08:26", "1.5", "13085", "UK"])


@pytest.mark.timeout(20, method="thread")
def test_a_stray_quote_is_refused_without_holding_the_stream() -> None:
    # Before: the digester kept every following line in memory and recounted its quotes on
    # each line (quadratic), so one stray quote in a large upload pinned the server.
    row = "1,A,PLAIN,1,2010-12-01 08:26,1.5,13085,UK\n"
    chunks = [(HEADER + '2,B,"OPEN QUOTE,1,2010-12-01 08:26,1.5,13085,UK\n').encode()]
    chunks += [(row * 2000).encode()] * 200  # 16 MB of rows after the stray quote
    with pytest.raises(DatasetFormatError, match="unbalanced quote"):
        digest_chunks(chunks)


@pytest.mark.timeout(20, method="thread")
def test_a_line_without_end_is_refused() -> None:
    chunks = [HEADER.encode()] + [b"x" * (1 << 20)] * 3
    with pytest.raises(DatasetFormatError, match="line longer"):
        digest_chunks(chunks)

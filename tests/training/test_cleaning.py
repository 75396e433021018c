"""Cleaning: each rule's count on a hand-made file where every dirty line is known."""

from __future__ import annotations

from pathlib import Path

from tests.training.helpers import write_csv
from training.cleaning import RULES, clean
from training.loader import load_transactions

ROWS = [
    # kept: two sales, one return
    "100,A1,good,2,2024-01-02 10:00:00,3.5,1001,United Kingdom",
    "100,B2,good,1,2024-01-02 10:00:00,10,1001,United Kingdom",
    "C101,A1,returned,-1,2024-01-05 11:00:00,3.5,1001,United Kingdom",
    # kept: a cancellation written with a positive quantity becomes a return
    "C102,B2,returned,1,2024-01-06 11:00:00,10,1002,United Kingdom",
    # kept: a negative quantity without "C" is a return too
    "103,B2,adjust,-2,2024-01-07 11:00:00,10,1002,United Kingdom",
    # missing_customer_id x2
    "104,A1,guest,1,2024-01-08 11:00:00,3.5,,United Kingdom",
    "105,A1,guest,3,2024-01-08 12:00:00,3.5,,United Kingdom",
    # non_product_code x2 (POST and a bank charge)
    "106,POST,postage,1,2024-01-09 11:00:00,18,1001,United Kingdom",
    "106,BANK CHARGES,fee,1,2024-01-09 11:00:00,15,1001,United Kingdom",
    # kept: a $0 line (free sample) is a sale of value 0
    "107,A1,free,1,2024-01-10 11:00:00,0,1003,United Kingdom",
    # negative_price x1 (bad debt)
    "108,B2,bad debt,1,2024-01-10 11:00:00,-11062.06,1003,United Kingdom",
    # zero_quantity x1
    "109,A1,nothing,0,2024-01-11 11:00:00,3.5,1003,United Kingdom",
    # duplicate_line x2: two more copies of the first line
    "100,A1,good,2,2024-01-02 10:00:00,3.5,1001,United Kingdom",
    "100,A1,good,2,2024-01-02 10:00:00,3.5,1001,United Kingdom",
]


def test_each_rule_counts_its_own_rows(tmp_path: Path) -> None:
    lines = load_transactions(write_csv(tmp_path / "dirty.csv", ROWS)).lines
    kept, report = clean(lines)
    assert report.rows_in == 14
    assert report.dropped == {
        "missing_customer_id": 2,
        "non_product_code": 2,
        "negative_price": 1,
        "zero_quantity": 1,
        "duplicate_line": 2,
    }
    assert report.rows_out == 6 == len(kept)
    assert report.flagged == {
        "zero_price_lines": 1,
        "cancellation_lines": 2,
        "negative_quantity_lines": 3,
        "cancellation_sign_fixed": 1,
    }
    assert list(kept["Invoice"]) == ["100", "100", "C101", "C102", "103", "107"]
    assert list(kept["Quantity"]) == [2.0, 1.0, -1.0, -1.0, -2.0, 1.0]
    manifest = report.as_manifest()
    assert manifest["rules"] == list(RULES)
    assert manifest["rows_in"] - sum(manifest["dropped"].values()) == manifest["rows_out"]

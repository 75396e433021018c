"""Loader: schema errors name what is wrong and where; good files load the same from CSV or XLSX."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from crm.columns import EXPORT_COLUMNS
from tests.training.helpers import write_csv
from training.loader import SchemaError, load_category_map, load_transactions

GOOD = [
    "536365,85123A,WHITE HANGING HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom",
    "536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850,United Kingdom",
    "C536379,D,Discount,-1,2010-12-01T09:41:00,27.5,14527,United Kingdom",
    "536380,22961,JAM MAKING SET,24,2010-12-01 09:41:00,1.45,,France",
]


def test_good_csv_is_typed(tmp_path: Path) -> None:
    lines = load_transactions(write_csv(tmp_path / "ok.csv", GOOD)).lines
    assert list(lines["Customer ID"]) == ["17850", "17850", "14527", ""]
    assert list(lines["Quantity"]) == [6.0, 6.0, -1.0, 24.0]
    assert list(lines["Price"]) == [2.55, 3.39, 27.5, 1.45]
    assert list(lines["InvoiceDate"]) == [
        pd.Timestamp("2010-12-01 08:26:00"),
        pd.Timestamp("2010-12-01 08:26:00"),
        pd.Timestamp("2010-12-01 09:41:00"),
        pd.Timestamp("2010-12-01 09:41:00"),
    ]
    assert set(lines["Category"]) == {"other"}


def test_missing_column_is_named(tmp_path: Path) -> None:
    header = "Invoice,StockCode,Description,Quantity,InvoiceDate,Customer ID,Country"
    path = write_csv(tmp_path / "no_price.csv", ["1,A,x,1,2010-12-01 08:26:00,1,UK"], header)
    with pytest.raises(SchemaError) as err:
        load_transactions(path)
    assert err.value.problems == ["missing column 'Price'"]


def test_unparseable_dates_are_counted_with_rows(tmp_path: Path) -> None:
    rows = [*GOOD[:2], "1,A,x,1,yesterday,1,1,UK", GOOD[2], "2,B,y,1,2010-13-45 10:00,1,1,UK"]
    with pytest.raises(SchemaError) as err:
        load_transactions(write_csv(tmp_path / "dates.csv", rows))
    assert err.value.problems == [
        "InvoiceDate: not a date-time in 2 value(s), e.g. row 4 ('yesterday'), "
        "row 6 ('2010-13-45 10:00')"
    ]


def test_unparseable_numbers_are_counted_per_column(tmp_path: Path) -> None:
    rows = [
        "1,A,x,six,2010-12-01 08:26:00,1,1,UK",
        "2,B,x,1,2010-12-01 08:26:00,free,1,UK",
        "3,C,x,,2010-12-01 08:26:00,abc,1,UK",
    ]
    with pytest.raises(SchemaError) as err:
        load_transactions(write_csv(tmp_path / "numbers.csv", rows))
    assert err.value.problems == [
        "Quantity: not a number in 2 value(s), e.g. row 2 ('six'), row 4 ('')",
        "Price: not a number in 2 value(s), e.g. row 3 ('free'), row 4 ('abc')",
    ]


def test_empty_invoice_is_reported(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match=r"Invoice: empty in 1 value\(s\), e.g. row 2"):
        load_transactions(write_csv(tmp_path / "inv.csv", [",A,x,1,2010-12-01 08:26:00,1,1,UK"]))


def test_empty_file_and_wrong_type_and_missing_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(SchemaError, match="empty file"):
        load_transactions(empty)
    with pytest.raises(SchemaError, match=r"unsupported file type '\.json'"):
        (tmp_path / "x.json").write_text("{}")
        load_transactions(tmp_path / "x.json")
    with pytest.raises(SchemaError, match="no such file"):
        load_transactions(tmp_path / "absent.csv")


def test_xlsx_loads_like_csv(tmp_path: Path) -> None:
    csv_lines = load_transactions(write_csv(tmp_path / "ok.csv", GOOD)).lines
    raw = pd.read_csv(tmp_path / "ok.csv", dtype=str, keep_default_na=False)
    raw["InvoiceDate"] = csv_lines["InvoiceDate"]  # real spreadsheet cells hold datetimes
    raw["Quantity"] = csv_lines["Quantity"]
    raw["Customer ID"] = pd.to_numeric(raw["Customer ID"]).astype(float)
    raw.to_excel(tmp_path / "ok.xlsx", index=False)
    loaded = load_transactions(tmp_path / "ok.xlsx")
    assert loaded.file_format == "xlsx"
    pd.testing.assert_frame_equal(loaded.lines, csv_lines, check_dtype=False)


def test_category_column_and_mapping(tmp_path: Path) -> None:
    mapping = tmp_path / "map.csv"
    mapping.write_text("StockCode,Category\n85123A,Home\n22961,grocery\n")
    assert load_category_map(mapping) == {"85123A": "home", "22961": "grocery"}
    lines = load_transactions(write_csv(tmp_path / "ok.csv", GOOD), mapping).lines
    assert list(lines["Category"]) == ["home", "other", "other", "grocery"]

    header = ",".join([*EXPORT_COLUMNS, "Category"])
    rows = [GOOD[0] + ",Electronics", GOOD[3] + ","]
    lines = load_transactions(write_csv(tmp_path / "cat.csv", rows, header), mapping).lines
    assert list(lines["Category"]) == ["electronics", "grocery"]

    bad = tmp_path / "bad_map.csv"
    bad.write_text("Code,Category\nA,home\n")
    with pytest.raises(SchemaError, match="missing column 'StockCode'"):
        load_category_map(bad)

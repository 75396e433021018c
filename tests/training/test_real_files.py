"""A spreadsheet in the Online Retail II layout, with a category mapping, through the whole run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from crm.artifacts import read_manifest, sha256_file
from training.pipeline import RunConfig, run
from training.synthetic import SyntheticConfig, generate


def test_xlsx_with_category_map(tmp_path: Path) -> None:
    data = generate(SyntheticConfig(customers=300, days=450, seed=2))
    sheet = data.lines.drop(columns=["Category"]).copy()
    sheet["InvoiceDate"] = pd.to_datetime(sheet["InvoiceDate"])  # spreadsheets hold datetimes
    sheet["Customer ID"] = pd.to_numeric(sheet["Customer ID"])  # ... and ids as numbers
    xlsx = tmp_path / "online_retail_II.xlsx"
    sheet.to_excel(xlsx, index=False)
    mapping = tmp_path / "categories.csv"
    data.catalogue.rename(columns={"product_id": "StockCode", "category": "Category"})[
        ["StockCode", "Category"]
    ].to_csv(mapping, index=False)

    out = tmp_path / "artifacts"
    result = run(
        RunConfig(out=out, data=xlsx, category_map=mapping, models=("spend",)), lambda _l: None
    )
    spend = read_manifest(out / "spend" / "1")
    source = spend["dataset"]["source"]
    assert source["format"] == "xlsx" and source["name"] == "online_retail_II.xlsx"
    assert source["sha256"] == sha256_file(xlsx)
    assert spend["dataset"]["rows"] == len(sheet)  # lineage of a CSV export of every row
    assert spend["serving"]["categories"] == ["electronics", "fashion", "grocery", "home", "sports"]
    assert result.cleaning.dropped["missing_customer_id"] > 0

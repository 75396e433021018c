"""Small builders for hand-made transaction files and frames."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from crm.columns import EXPORT_COLUMNS

HEADER = ",".join(EXPORT_COLUMNS)


def write_csv(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def lines_frame(rows: list[tuple]) -> pd.DataFrame:
    """(invoice, stock, qty, date, price, customer, category) tuples -> a loader-shaped frame."""
    return pd.DataFrame(
        {
            "Invoice": [r[0] for r in rows],
            "StockCode": [r[1] for r in rows],
            "Description": [f"item {r[1]}" for r in rows],
            "Quantity": [float(r[2]) for r in rows],
            "InvoiceDate": pd.to_datetime([r[3] for r in rows]),
            "Price": [float(r[4]) for r in rows],
            "Customer ID": [r[5] for r in rows],
            "Country": ["United Kingdom"] * len(rows),
            "Category": [r[6] for r in rows],
        }
    )

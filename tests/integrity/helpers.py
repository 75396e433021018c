"""Shared test data: small Online Retail II CSVs written the way a retailer's export looks."""

from __future__ import annotations

import csv
import random
from pathlib import Path

COLUMNS = ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price",
           "Customer ID", "Country"]  # fmt: skip


def transaction_rows(n: int, seed: int = 0) -> list[list[str]]:
    """Rows with the quirks of the real export: float customer ids, quoted commas, returns."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        invoice = f"{'C' if rng.random() < 0.05 else ''}{489434 + i // 4}"
        quantity = rng.choice([1, 2, 6, 12, 24]) * (-1 if invoice.startswith("C") else 1)
        rows.append(
            [
                invoice,
                rng.choice(["85048", "79323P", "22041", "21232"]),
                rng.choice(['15CM CHRISTMAS GLASS BALL, "20" LIGHTS', "PINK CHERRY LIGHTS",
                            "RECORD FRAME 7\" SINGLE SIZE", "STRAWBERRY CERAMIC TRINKET BOX"]),
                str(quantity),
                f"12/{1 + i % 28}/2010 {8 + i % 10}:{i % 60:02d}",
                rng.choice(["6.95", "1.25", "0.85", "2.10", "12.75"]),
                rng.choice(["13085.0", "12362.0", ""]),
                rng.choice(["United Kingdom", "France", "EIRE"]),
            ]
        )  # fmt: skip
    return rows


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return path

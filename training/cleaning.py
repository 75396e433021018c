"""Cleaning rules for transaction lines, applied in a fixed order and counted one by one.

Rules (each counts the rows it drops among those the earlier rules kept):
  1. missing_customer_id   no Customer ID: the line cannot be attributed to anyone.
  2. non_product_code      postage, fees, manual adjustments and other codes that are not
                           merchandise (POST, DOT, M, D, C2, BANK CHARGES, AMAZONFEE, ...).
  3. negative_price        Price < 0: write-offs, "adjust bad debt" lines.
  4. zero_quantity         Quantity == 0.
  5. duplicate_line        an exact repeat of an earlier line (every column equal).
Kept but flagged: $0 lines (free items, samples, promotions) are sales of value 0, so a
customer whose only lines are $0 is still a customer (counted as `zero_price_lines`);
cancellations (Invoice starting with "C") and negative quantities are
returns; a "C" invoice with a positive quantity is made negative (counted as
`cancellation_sign_fixed`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from crm.columns import CUSTOMER_ID, INVOICE, PRICE, QUANTITY, STOCK_CODE
from crm.features import cancellation_mask, per_distinct
from crm.line_rules import (  # noqa: F401  (NON_PRODUCT_CODES: re-exported)
    NON_PRODUCT_CODES,
    bad_history_prices,
    bad_history_quantities,
    is_non_product,
)

RULES: tuple[str, ...] = (
    "missing_customer_id",
    "non_product_code",
    "negative_price",
    "zero_quantity",
    "duplicate_line",
)


@dataclass
class CleaningReport:
    """How many rows each rule dropped, in rule order, plus what was kept and flagged."""

    rows_in: int
    rows_out: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    flagged: dict[str, int] = field(default_factory=dict)

    def as_manifest(self) -> dict[str, Any]:
        return {
            "rules": list(RULES),
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "dropped": dict(self.dropped),
            "flagged": dict(self.flagged),
        }


def clean(lines: pd.DataFrame) -> tuple[pd.DataFrame, CleaningReport]:
    """Apply the rules above; returns the kept lines (original order) and the report."""
    report = CleaningReport(rows_in=len(lines))
    frame = lines

    def drop(rule: str, mask: np.ndarray) -> None:
        nonlocal frame
        report.dropped[rule] = int(mask.sum())
        frame = frame.loc[~mask]

    drop("missing_customer_id", (frame[CUSTOMER_ID] == "").to_numpy(dtype=bool))
    drop("non_product_code", per_distinct(frame[STOCK_CODE], is_non_product).astype(bool))
    drop("negative_price", bad_history_prices(frame[PRICE].to_numpy()))
    drop("zero_quantity", bad_history_quantities(frame[QUANTITY].to_numpy()))
    drop("duplicate_line", frame.duplicated(keep="first").to_numpy(dtype=bool))

    frame = frame.copy()
    cancelled = cancellation_mask(frame[INVOICE])
    wrong_sign = cancelled & (frame[QUANTITY].to_numpy() > 0)
    frame.loc[wrong_sign, QUANTITY] = -frame.loc[wrong_sign, QUANTITY]
    report.flagged = {
        "zero_price_lines": int((frame[PRICE] == 0).sum()),
        "cancellation_lines": int(cancelled.sum()),
        "negative_quantity_lines": int((frame[QUANTITY].to_numpy() < 0).sum()),
        "cancellation_sign_fixed": int(wrong_sign.sum()),
    }
    report.rows_out = len(frame)
    return frame.reset_index(drop=True), report

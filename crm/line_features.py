"""Invoice-line features for the revenue model, shared by training and serving (numpy/pandas).

A line is valued on what is known when it is sold: its quantity, unit price, category, time,
and the other lines of the same invoice in the frame (lines with an empty Invoice stand alone).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from crm.columns import CATEGORY, INVOICE, PRICE
from crm.feature_spec import CATEGORY_SLOT, FeatureSpec, FeatureTable
from crm.features import prepare_lines

# A model input column per category: 1.0 when the line (or product) is in it, else 0.0.
CATEGORY_FLAG_PREFIX = "cat__"
GROSS = "gross_revenue"
LINE_FEATURES = FeatureTable(
    (
        FeatureSpec("quantity", "units on the line (a return's units counted as positive)", "units"),
        FeatureSpec("unit_price", "price of one unit on the line", "money"),
        FeatureSpec(GROSS, "quantity x unit_price", "money"),
        FeatureSpec("log_quantity", "ln(1 + quantity)", "ln units"),
        FeatureSpec("log_unit_price", "ln(1 + unit_price)", "ln money"),
        FeatureSpec("log_gross_revenue", "ln(1 + gross_revenue)", "ln money"),
        FeatureSpec("hour", "time of day of the invoice, UTC", "hour 0..24"),
        FeatureSpec("day_of_week", "day of the invoice, 0 = Monday .. 6 = Sunday (UTC)", "0..6"),
        FeatureSpec("is_weekend", "1 when the invoice is on Saturday or Sunday", "flag 0/1"),
        FeatureSpec("month", "month of the invoice, 1 = January", "1..12"),
        FeatureSpec("invoice_lines", "lines of the same invoice in the request (1 without invoice)", "count"),
        FeatureSpec("invoice_gross", "gross_revenue of all lines of the same invoice in the request", "money"),
        FeatureSpec("share_of_invoice", "gross_revenue / invoice_gross (1 when invoice_gross is 0)", "fraction 0..1"),
    ),
    # One per category (manifest order): whether the line is in it.
    FeatureSpec(CATEGORY_FLAG_PREFIX + CATEGORY_SLOT, "1 when the line's category is {category}", "flag 0/1"),
)  # fmt: skip
BASE_FEATURES: tuple[str, ...] = LINE_FEATURES.base_names


def line_feature_names(categories: Sequence[str]) -> list[str]:
    """Ordered revenue-model inputs (the revenue manifest's `features`)."""
    return LINE_FEATURES.names(categories)


def line_feature_matrix(
    lines: pd.DataFrame,
    categories: Sequence[str],
    category_of: Mapping[str, str] | None = None,
) -> np.ndarray:
    """float32 [n, F] in `line_feature_names(categories)` order, one row per line, same order.

    Quantities are taken as absolute units (the model values sales); `gross_revenue` is
    quantity x unit price.
    """
    return line_features_from_prepared(prepare_lines(lines, category_of), categories)


def line_features_from_prepared(prepared: pd.DataFrame, categories: Sequence[str]) -> np.ndarray:
    """The same matrix from lines already passed through `crm.features.prepare_lines`."""
    qty = np.abs(prepared["_qty"].to_numpy())
    price = prepared[PRICE].to_numpy()
    gross = qty * price
    seconds = prepared["_t"].to_numpy().astype(np.int64)
    days = seconds // 86_400
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday
    month = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12 + 1
    alone = prepared[INVOICE].to_numpy(dtype=object) == ""
    base = prepared["_i"].to_numpy(dtype=np.int64)
    keys = np.where(alone, -1 - np.arange(len(base)), base)  # a line without invoice is alone
    codes = pd.factorize(keys)[0] if len(keys) else np.zeros(0, dtype=np.int64)
    size = int(codes.max()) + 1 if len(codes) else 0
    inv_lines = np.bincount(codes, minlength=size)[codes]
    inv_gross = np.bincount(codes, weights=gross, minlength=size)[codes]
    cols: dict[str, np.ndarray] = {
        "quantity": qty,
        "unit_price": price,
        GROSS: gross,
        "log_quantity": np.log1p(qty),
        "log_unit_price": np.log1p(np.maximum(price, 0.0)),
        "log_gross_revenue": np.log1p(np.maximum(gross, 0.0)),
        "hour": (seconds % 86_400) / 3600.0,
        "day_of_week": weekday.astype(np.float64),
        "is_weekend": (weekday >= 5).astype(np.float64),
        "month": month.astype(np.float64),
        "invoice_lines": inv_lines.astype(np.float64),
        "invoice_gross": inv_gross,
        "share_of_invoice": np.where(inv_gross > 0, gross / np.maximum(inv_gross, 1e-12), 1.0),
    }
    category = prepared[CATEGORY].to_numpy(dtype=object)
    for c in categories:
        cols[CATEGORY_FLAG_PREFIX + c] = (category == c).astype(np.float64)
    names = line_feature_names(categories)
    if not len(prepared):
        return np.zeros((0, len(names)), dtype=np.float32)
    return np.column_stack([cols[n] for n in names]).astype(np.float32)

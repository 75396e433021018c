"""Which transaction lines a model may learn from or be asked about: one rule, used by
training's cleaning and by the server's input checks alike.

A history line (what a customer bought or returned) has a finite, non-zero quantity
(negative: a return) and a finite price >= 0 ($0 lines are kept: a customer whose only lines
are free is still a customer). A sale line to price (PredictInvoiceRevenue) is narrower: a
sale, so quantity > 0 and price > 0.
"""

from __future__ import annotations

import math

import numpy as np

QUANTITY_RULE = "must be finite and non-zero (negative for a return)"
PRICE_RULE = "must be a finite number >= 0"
SALE_QUANTITY_RULE = "must be a finite number > 0"
SALE_PRICE_RULE = "must be a finite number > 0"


def bad_history_quantity(quantity: float) -> bool:
    return not math.isfinite(quantity) or quantity == 0


def bad_history_price(price: float) -> bool:
    return not math.isfinite(price) or price < 0


def bad_sale_quantity(quantity: float) -> bool:
    return not (math.isfinite(quantity) and quantity > 0)


def bad_sale_price(price: float) -> bool:
    return not (math.isfinite(price) and price > 0)


def bad_history_quantities(quantity: np.ndarray) -> np.ndarray:
    """`bad_history_quantity` over a column (training's cleaning)."""
    q = np.asarray(quantity, dtype=np.float64)
    return ~np.isfinite(q) | (q == 0)


def bad_history_prices(price: np.ndarray) -> np.ndarray:
    """`bad_history_price` over a column (training's cleaning)."""
    p = np.asarray(price, dtype=np.float64)
    return ~np.isfinite(p) | (p < 0)


def bad_sale_quantities(quantity: np.ndarray) -> np.ndarray:
    """`bad_sale_quantity` over a column (bulk revenue)."""
    q = np.asarray(quantity, dtype=np.float64)
    return ~(np.isfinite(q) & (q > 0))


def bad_sale_prices(price: np.ndarray) -> np.ndarray:
    """`bad_sale_price` over a column (bulk revenue)."""
    p = np.asarray(price, dtype=np.float64)
    return ~(np.isfinite(p) & (p > 0))

"""Product-day demand rows: the one builder training and serving share (numpy only).

A forecast starts at an origin day (UTC midnight) and covers days origin .. origin+h-1. Its
rows are built from a product's daily units sold (returns excluded) on the days strictly before
the origin, newest last, so the same function turns the training panel and the served product
snapshot into identical rows. Rows come product-major: product 0 day 1..h, product 1 day 1..h.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from typing import Any

import numpy as np

from crm.feature_spec import CATEGORY_SLOT, FeatureSpec, FeatureTable
from crm.line_features import CATEGORY_FLAG_PREFIX

HISTORY_DAYS = 56
MAX_HORIZON_DAYS = 7
_LAG_WEEKS = (1, 2, 3, 4)

_UNITS = "units"
DEMAND_FEATURES = FeatureTable(
    (
        FeatureSpec("horizon_day", "which day ahead the row forecasts, 1 = the origin day", "1..7"),
        FeatureSpec("day_of_week", "the forecast day, 0 = Monday .. 6 = Sunday (UTC)", "0..6"),
        FeatureSpec("is_weekend", "1 when the forecast day is Saturday or Sunday", "flag 0/1"),
        FeatureSpec("month", "month of the forecast day, 1 = January", "1..12"),
        FeatureSpec("day_of_year_sin", "sine of the forecast day's position in the year", "-1..1"),
        FeatureSpec("day_of_year_cos", "cosine of the forecast day's position in the year", "-1..1"),
        *(FeatureSpec(f"lag_same_weekday_{k}w", f"units sold on the same weekday {k} week(s) before the forecast day", _UNITS) for k in _LAG_WEEKS),
        FeatureSpec("mean_same_weekday_8w", "mean units sold on the same weekday over the 8 weeks before the forecast day", _UNITS),
        FeatureSpec("last_day_units", "units sold on the day before the origin", _UNITS),
        FeatureSpec("mean_7d", "mean units sold per day over the 7 days before the origin", _UNITS),
        FeatureSpec("mean_14d", "mean units sold per day over the 14 days before the origin", _UNITS),
        FeatureSpec("mean_28d", "mean units sold per day over the 28 days before the origin", _UNITS),
        FeatureSpec("mean_56d", "mean units sold per day over the 56 days before the origin", _UNITS),
        FeatureSpec("std_28d", "standard deviation of daily units over the 28 days before the origin", _UNITS),
        FeatureSpec("zero_share_28d", "share of the 28 days before the origin without a sale", "fraction 0..1"),
        FeatureSpec("days_since_last_sale", f"days from the last day with a sale to the origin ({HISTORY_DAYS + 1} = none in {HISTORY_DAYS} days)", "days"),
        FeatureSpec("trend_7d_28d", "(mean_7d - mean_28d) / (mean_7d + mean_28d + 1)", "-1..1"),
        FeatureSpec("unit_price", "the product's list price per unit", "money"),
    ),
    # One per category (manifest order): whether the product is in it.
    FeatureSpec(CATEGORY_FLAG_PREFIX + CATEGORY_SLOT, "1 when the product's category is {category}", "flag 0/1"),
)  # fmt: skip
BASE_FEATURES: tuple[str, ...] = DEMAND_FEATURES.base_names


def demand_feature_names(categories: Sequence[str]) -> list[str]:
    """Ordered demand-model inputs (the demand manifest's `features`)."""
    return DEMAND_FEATURES.names(categories)


def to_day(moment: Any) -> np.datetime64:
    """A date, datetime, numpy or pandas moment -> numpy day (naive UTC)."""
    if hasattr(moment, "tzinfo") and moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    if hasattr(moment, "to_datetime64"):
        moment = moment.to_datetime64()
    return np.datetime64(moment, "D")


def daily_units(
    product_index: np.ndarray, day_index: np.ndarray, units: np.ndarray, products: int, days: int
) -> np.ndarray:
    """Dense [products, days] panel of units sold from per-line indices (out of range ignored)."""
    ok = (product_index >= 0) & (product_index < products) & (day_index >= 0) & (day_index < days)
    flat = product_index[ok].astype(np.int64) * days + day_index[ok].astype(np.int64)
    counts = np.bincount(flat, weights=units[ok].astype(np.float64), minlength=products * days)
    return counts.reshape(products, days)


def _pad(history: np.ndarray) -> np.ndarray:
    history = np.atleast_2d(np.asarray(history, dtype=np.float64))
    if history.shape[1] >= HISTORY_DAYS:
        return history[:, -HISTORY_DAYS:]
    pad = np.zeros((history.shape[0], HISTORY_DAYS - history.shape[1]))
    return np.concatenate([pad, history], axis=1)


def demand_rows(  # noqa: PLR0917 - callers pass the horizon positionally
    history: np.ndarray,
    origin: Any,
    unit_price: Sequence[float] | np.ndarray,
    category: Sequence[str],
    categories: Sequence[str],
    horizon: int = MAX_HORIZON_DAYS,
) -> np.ndarray:
    """float32 [P * horizon, F] rows for P products' next `horizon` days from `origin`.

    `history` is [P, L] daily units for the L days before the origin (newest last); fewer than
    HISTORY_DAYS columns are padded with zeros on the left.
    """
    if not 1 <= horizon <= MAX_HORIZON_DAYS:
        raise ValueError(f"horizon must be 1..{MAX_HORIZON_DAYS}, got {horizon}")
    hist = _pad(history)
    n_products = hist.shape[0]
    price = np.asarray(unit_price, dtype=np.float64).reshape(-1)
    if price.size != n_products or len(category) != n_products:
        raise ValueError("history, unit_price and category must describe the same products")
    last = HISTORY_DAYS - 1
    mean = {w: hist[:, -w:].mean(axis=1) for w in (7, 14, 28, 56)}
    sold = hist > 0
    any_sale = sold.any(axis=1)
    days_back = np.argmax(sold[:, ::-1], axis=1)
    since = np.where(any_sale, days_back + 1, HISTORY_DAYS + 1)
    common = {
        "last_day_units": hist[:, last],
        "mean_7d": mean[7],
        "mean_14d": mean[14],
        "mean_28d": mean[28],
        "mean_56d": mean[56],
        "std_28d": hist[:, -28:].std(axis=1),
        "zero_share_28d": (hist[:, -28:] == 0).mean(axis=1),
        "days_since_last_sale": since.astype(np.float64),
        "trend_7d_28d": (mean[7] - mean[28]) / (mean[7] + mean[28] + 1.0),
        "unit_price": price,
    }
    cats = np.asarray(list(category), dtype=object)
    for c in categories:
        common[CATEGORY_FLAG_PREFIX + c] = (cats == c).astype(np.float64)

    start = to_day(origin)
    blocks = []
    for h in range(1, horizon + 1):
        target = start + np.timedelta64(h - 1, "D")
        weekday = int((target.astype(np.int64) + 3) % 7)  # 1970-01-01 was a Thursday
        year_start = target.astype("datetime64[Y]").astype("datetime64[D]")
        day_of_year = int((target - year_start).astype(np.int64))
        month = int(target.astype("datetime64[M]").astype(np.int64) % 12) + 1
        col: dict[str, np.ndarray | float] = {
            "horizon_day": float(h),
            "day_of_week": float(weekday),
            "is_weekend": float(weekday >= 5),
            "month": float(month),
            "day_of_year_sin": float(np.sin(2 * np.pi * day_of_year / 365.25)),
            "day_of_year_cos": float(np.cos(2 * np.pi * day_of_year / 365.25)),
        }
        same_weekday = [last + h - 7 * k for k in range(1, 9)]
        for k in _LAG_WEEKS:
            col[f"lag_same_weekday_{k}w"] = hist[:, same_weekday[k - 1]]
        col["mean_same_weekday_8w"] = hist[:, same_weekday].mean(axis=1)
        col.update(common)
        names = demand_feature_names(categories)
        block = np.empty((n_products, len(names)), dtype=np.float64)
        for j, name in enumerate(names):
            block[:, j] = col[name]
        blocks.append(block)
    rows = np.stack(blocks, axis=1).reshape(n_products * horizon, -1)
    return rows.astype(np.float32)

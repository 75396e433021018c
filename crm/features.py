"""Customer features: the one implementation training and serving share (numpy/pandas only).

Input is a frame of transaction lines with the loader's columns (`LINE_COLUMNS`); a customer's
features at an as-of time use only lines strictly before it. A line is a return when its
Quantity is negative or its Invoice starts with "C"; everything else with Quantity > 0 is a
sale. Amounts are Quantity x Price in the data's currency. Days are fractional days.

Every feature's meaning and unit: `CUSTOMER_FEATURES` below (the one table; the
manifests' `feature_docs`, ModelService's `features` and the README's table come from it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from crm.columns import (
    CATEGORY,
    COUNTRY,
    CUSTOMER_ID,
    DESCRIPTION,
    EXPORT_COLUMNS,
    INVOICE,
    INVOICE_DATE,
    PRICE,
    QUANTITY,
    STOCK_CODE,
)
from crm.feature_spec import CATEGORY_SLOT, FeatureSpec, FeatureTable

LINE_COLUMNS: tuple[str, ...] = (*EXPORT_COLUMNS, CATEGORY)
REQUIRED_COLUMNS: tuple[str, ...] = (
    INVOICE,
    STOCK_CODE,
    QUANTITY,
    INVOICE_DATE,
    PRICE,
    CUSTOMER_ID,
)
UNCATEGORISED = "other"
# The RFM triple segmentation is trained on and scores by, in this order.
RFM_FEATURES = ("recency_days", "frequency", "monetary")
# A customer feature column per category: the share of gross spend in that category.
CATEGORY_SHARE_PREFIX = "cat_share__"
WINDOWS_DAYS: tuple[int, ...] = (7, 30, 90, 180, 365)
SECONDS_PER_DAY = 86_400.0

_DAYS, _COUNT, _MONEY, _FRACTION = "days", "count", "money", "fraction 0..1"
CUSTOMER_FEATURES = FeatureTable(
    (
        FeatureSpec("recency_days", "days from the last sale invoice to as_of (no sale: days since the customer's first line)", _DAYS),
        FeatureSpec("frequency", "distinct sale invoices", _COUNT),
        FeatureSpec("monetary", "net spend: sales minus returns (can be negative)", _MONEY),
        FeatureSpec("gross_spend", "sales only, returns not deducted", _MONEY),
        FeatureSpec("avg_basket_value", "gross_spend / frequency", _MONEY),
        FeatureSpec("max_basket_value", "largest sale invoice", _MONEY),
        FeatureSpec("avg_lines_per_invoice", "sale lines / frequency", _COUNT),
        FeatureSpec("avg_units_per_invoice", "units sold / frequency", "units"),
        FeatureSpec("avg_unit_price", "gross_spend / units sold", _MONEY),
        FeatureSpec("unique_products", "distinct StockCodes bought", _COUNT),
        FeatureSpec("avg_interpurchase_days", "purchase_span_days / (frequency - 1); 0 with one purchase", _DAYS),
        FeatureSpec("std_interpurchase_days", "standard deviation of the gaps between sale invoices; 0 with fewer than 3", _DAYS),
        FeatureSpec("max_gap_days", "longest gap between consecutive sale invoices", _DAYS),
        FeatureSpec("purchase_span_days", "last sale minus first sale", _DAYS),
        FeatureSpec("tenure_days", "as_of minus the first sale (no sale: the first line)", _DAYS),
        FeatureSpec("recency_cycle_ratio", "recency_days / the typical cycle (avg_interpurchase_days when frequency > 1, else tenure_days), the cycle floored at 1 day", "ratio"),
        FeatureSpec("return_rate", "returned value / gross_spend, clipped to 0..1", _FRACTION),
        FeatureSpec("return_invoices", "distinct return invoices", _COUNT),
        *(FeatureSpec(f"spend_{w}d", f"sales in the last {w} days before as_of", _MONEY) for w in WINDOWS_DAYS),
        *(FeatureSpec(f"txn_{w}d", f"sale invoices in the last {w} days before as_of", _COUNT) for w in WINDOWS_DAYS),
        FeatureSpec("spend_trend_30d", "(sales of the last 30 days - the 30 days before) / (their sum + 1)", "-1..1"),
        FeatureSpec("spend_trend_90d", "(sales of the last 90 days - the 90 days before) / (their sum + 1)", "-1..1"),
        FeatureSpec("txn_trend_90d", "the same trend on sale invoice counts over 90 days", "-1..1"),
        FeatureSpec("active_months_365d", "twelfths of the last 365 days with a sale invoice", "count 0..12"),
        FeatureSpec("weekend_share", "share of sale invoices on Saturday or Sunday", _FRACTION),
        FeatureSpec("as_of_season_sin", "sine of as_of's position in the year (the same for every customer at one as_of), so models learn seasonal lifts", "-1..1"),
        FeatureSpec("as_of_season_cos", "cosine of as_of's position in the year", "-1..1"),
    ),
    # One per category (manifest order): the share of gross_spend in that category.
    FeatureSpec(CATEGORY_SHARE_PREFIX + CATEGORY_SLOT, "share of gross_spend in category {category}", _FRACTION),
)  # fmt: skip
BASE_FEATURES: tuple[str, ...] = CUSTOMER_FEATURES.base_names
# The features that can be negative (net spend after returns, trends, season position); every
# other feature is a count, amount, share or duration, so a negative value is invalid input.
SIGNED_FEATURES: frozenset[str] = frozenset(
    {"monetary", "spend_trend_30d", "spend_trend_90d", "txn_trend_90d", "as_of_season_sin",
     "as_of_season_cos"}
)  # fmt: skip


class FeatureInputError(ValueError):
    """Lines that cannot be turned into features; `field` names the offending column."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def feature_names(categories: Sequence[str]) -> list[str]:
    """The ordered feature list for a category list (the manifest's `features`)."""
    return CUSTOMER_FEATURES.names(categories)


def categories_from_features(names: Sequence[str]) -> list[str]:
    return [n[len(CATEGORY_SHARE_PREFIX) :] for n in names if n.startswith(CATEGORY_SHARE_PREFIX)]


def to_utc_naive(moment: Any) -> pd.Timestamp:
    """As-of times and line dates are compared as naive UTC; aware inputs are converted."""
    ts = pd.Timestamp(moment)
    if ts.tzinfo is not None:
        ts = ts.tz_convert(UTC).tz_localize(None)
    return ts


def _epoch_seconds(values: pd.Series) -> np.ndarray:
    dates = pd.to_datetime(values)
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_convert(UTC).dt.tz_localize(None)
    return dates.to_numpy(dtype="datetime64[s]").astype(np.int64).astype(np.float64)


def timestamp_seconds(moment: Any) -> float:
    return float(to_utc_naive(moment).to_datetime64().astype("datetime64[s]").astype(np.int64))


def per_distinct(values: pd.Series | np.ndarray, fn: Callable[[Any], Any]) -> np.ndarray:
    """fn applied once per distinct value (missing values pass None), spread back to every row.

    Columns repeat the same few texts (stock codes, invoices) many times; this turns a million
    Python calls into one per distinct value.
    """
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    mapped = [fn(u) for u in uniques]
    out = np.empty(len(mapped) + 1, dtype=object)
    out[: len(mapped)] = mapped
    out[-1] = fn(None)
    return out[codes]


def _distinct_text(values: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(codes, stripped text of each distinct value); code -1 marks a missing value."""
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    text = np.char.strip(np.asarray(uniques, dtype=object).astype(str)) if len(uniques) else []
    return codes, np.asarray(text, dtype=str)


def text_values(values: pd.Series | np.ndarray) -> np.ndarray:
    """Stripped text of every value, '' for missing (numpy string ops over distinct values)."""
    codes, text = _distinct_text(values)
    return np.append(text.astype(object), "")[codes]


def cancellation_mask(invoices: pd.Series | np.ndarray) -> np.ndarray:
    """Invoices starting with "C" (any case, after stripping): their lines are returns."""
    codes, text = _distinct_text(invoices)
    starts = np.char.startswith(np.char.upper(text), "C") if len(text) else np.zeros(0, bool)
    return np.append(starts, False)[codes]


def prepare_lines(
    lines: pd.DataFrame, category_of: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Coerce a lines frame to the shared dtypes; returns a new frame with derived columns.

    Derived: `_t` epoch seconds, `_ret` return flag, `_qty` signed units (a "C" invoice is
    always negative), `_amount` signed Quantity x Price, and integer codes `_c`, `_i`, `_p`,
    `_k` of Customer ID, Invoice, StockCode and Category (so per-cutoff work never touches
    strings). A missing or empty Category is taken from `category_of` (StockCode -> category)
    when given, else `UNCATEGORISED`.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in lines.columns]
    if missing:
        raise FeatureInputError(missing[0], "column missing from the transaction lines")
    out = pd.DataFrame(index=pd.RangeIndex(len(lines)))
    out[INVOICE] = text_values(lines[INVOICE])
    out[STOCK_CODE] = text_values(lines[STOCK_CODE])
    out[CUSTOMER_ID] = text_values(lines[CUSTOMER_ID])
    for col in (QUANTITY, PRICE):
        values = pd.to_numeric(lines[col], errors="coerce").to_numpy(dtype=np.float64)
        if len(values) and not np.isfinite(values).all():
            raise FeatureInputError(col, "not a finite number in every line")
        out[col] = values
    try:
        out["_t"] = _epoch_seconds(lines[INVOICE_DATE]) if len(lines) else np.zeros(0)
    except (ValueError, TypeError) as err:
        raise FeatureInputError(INVOICE_DATE, f"not a date-time in every line ({err})") from None
    out[INVOICE_DATE] = pd.to_datetime(out["_t"].to_numpy().astype("datetime64[s]"))
    if CATEGORY in lines.columns:
        category = text_values(lines[CATEGORY])
    else:
        category = np.full(len(lines), "", dtype=object)
    category = pd.Series(category, dtype=object)
    blank = category.eq("")
    if blank.any():
        mapped = out.loc[blank.to_numpy(), STOCK_CODE].map(dict(category_of or {}))
        category[blank] = mapped.fillna(UNCATEGORISED).to_numpy()
    out[CATEGORY] = category.to_numpy()
    cancelled = cancellation_mask(out[INVOICE])
    out["_ret"] = (out[QUANTITY].to_numpy() < 0) | cancelled
    qty = np.abs(out[QUANTITY].to_numpy())
    out["_qty"] = np.where(out["_ret"].to_numpy(), -qty, qty)
    out["_amount"] = out["_qty"].to_numpy() * out[PRICE].to_numpy()
    for code, col in (("_c", CUSTOMER_ID), ("_i", INVOICE), ("_p", STOCK_CODE), ("_k", CATEGORY)):
        out[code] = pd.factorize(out[col])[0].astype(np.int64)
    for col in (DESCRIPTION, COUNTRY):
        out[col] = text_values(lines[col]) if col in lines.columns else ""
    return out


def _gap_stats(cust: np.ndarray, t_days: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Std and max of gaps between consecutive invoices per customer (sorted by cust, time)."""
    same = cust[1:] == cust[:-1]
    gaps = np.diff(t_days)[same]
    owner = cust[1:][same]
    count = np.bincount(owner, minlength=n).astype(np.float64)
    total = np.bincount(owner, weights=gaps, minlength=n)
    sq = np.bincount(owner, weights=gaps * gaps, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), 0.0)
        var = np.where(count > 1, (sq - count * mean * mean) / np.maximum(count - 1, 1), 0.0)
    max_gap = np.zeros(n)
    if len(gaps):
        np.maximum.at(max_gap, owner, gaps)
    return np.sqrt(np.maximum(var, 0.0)), max_gap


def _distinct_per_customer(cust: np.ndarray, value: np.ndarray, n: int) -> np.ndarray:
    """How many distinct non-negative integer `value`s each customer 0..n-1 has."""
    if not len(cust):
        return np.zeros(n, dtype=np.int64)
    base = int(value.max()) + 1
    keys = np.sort(cust * base + value)  # sorting beats numpy's hash-based unique here
    first = np.ones(len(keys), dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    return np.bincount(keys[first] // base, minlength=n)


def _trend(recent: np.ndarray, before: np.ndarray) -> np.ndarray:
    return (recent - before) / (recent + before + 1.0)


class LineArrays:
    """The numeric columns of prepared lines, taken out of the frame once.

    Features at many cutoffs reuse them; each cutoff then filters plain arrays instead of
    copying a frame with text columns.
    """

    def __init__(self, prepared: pd.DataFrame) -> None:
        self.t = prepared["_t"].to_numpy(dtype=np.float64)
        self.ret = prepared["_ret"].to_numpy(dtype=bool)
        self.amount = prepared["_amount"].to_numpy(dtype=np.float64)
        self.qty = prepared["_qty"].to_numpy(dtype=np.float64)
        self.cust = prepared["_c"].to_numpy(dtype=np.int64)
        self.invoice = prepared["_i"].to_numpy(dtype=np.int64)
        self.product = prepared["_p"].to_numpy(dtype=np.int64)
        self.category = prepared["_k"].to_numpy(dtype=np.int64)
        self.customer_ids = prepared[CUSTOMER_ID].to_numpy()
        codes, first = np.unique(self.category, return_index=True)
        names = prepared[CATEGORY].to_numpy()[first]
        self.category_code = {str(name): int(code) for code, name in zip(codes, names, strict=True)}


def compute_customer_features(
    prepared: pd.DataFrame | LineArrays, as_of: Any, categories: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(customer ids, float32 [n, F]) for every customer with a line strictly before as_of.

    `prepared` comes from `prepare_lines` (or is its LineArrays). Customers appear in order of
    first appearance in the frame. Columns follow `feature_names(categories)`.
    """
    lines = prepared if isinstance(prepared, LineArrays) else LineArrays(prepared)
    as_of_s = timestamp_seconds(as_of)
    keep = np.flatnonzero(lines.t < as_of_s)
    names = feature_names(categories)
    if not len(keep):
        return np.array([], dtype=object), np.zeros((0, len(names)), dtype=np.float32)
    _, first_row, inverse = np.unique(lines.cust[keep], return_index=True, return_inverse=True)
    appearance = np.argsort(first_row, kind="stable")
    rank = np.empty_like(appearance)
    rank[appearance] = np.arange(len(appearance))
    cust_codes = rank[inverse]  # 0.. in order of first appearance in the frame
    cust_ids = lines.customer_ids[keep[first_row[appearance]]]
    n = len(cust_ids)
    t = lines.t[keep]
    age = (as_of_s - t) / SECONDS_PER_DAY
    ret = lines.ret[keep]
    amount = lines.amount[keep]
    invoice = lines.invoice[keep]
    sale = ~ret

    first_line_age = np.zeros(n)
    np.maximum.at(first_line_age, cust_codes, age)
    returned = np.bincount(cust_codes[ret], weights=-amount[ret], minlength=n)
    return_invoices = _distinct_per_customer(cust_codes[ret], invoice[ret], n)

    s_cust = cust_codes[sale]
    s_age = age[sale]
    s_amount = amount[sale]
    s_units = lines.qty[keep][sale]
    unique_products = _distinct_per_customer(s_cust, lines.product[keep][sale], n)

    # one row per sale invoice, ordered by customer then time
    inv_key = s_cust * (int(invoice.max(initial=0)) + 1) + invoice[sale]
    keys, which = np.unique(inv_key, return_inverse=True)
    n_inv = len(keys)
    i_age = np.zeros(n_inv)
    np.maximum.at(i_age, which, s_age)
    i_amount = np.bincount(which, weights=s_amount, minlength=n_inv)
    i_units = np.bincount(which, weights=s_units, minlength=n_inv)
    i_lines = np.bincount(which, minlength=n_inv).astype(np.float64)
    i_t = np.full(n_inv, np.inf)
    np.minimum.at(i_t, which, t[sale])
    i_cust = keys // (int(invoice.max(initial=0)) + 1)
    chrono = np.lexsort((-i_age, i_cust))
    ic, i_age, i_amount = i_cust[chrono], i_age[chrono], i_amount[chrono]
    i_units, i_lines, i_t = i_units[chrono], i_lines[chrono], i_t[chrono]

    frequency = np.bincount(ic, minlength=n).astype(np.float64)
    gross = np.bincount(ic, weights=i_amount, minlength=n)
    units = np.bincount(ic, weights=i_units, minlength=n)
    sale_lines = np.bincount(ic, weights=i_lines, minlength=n)
    has_sale = frequency > 0
    last_age = np.full(n, np.inf)
    np.minimum.at(last_age, ic, i_age)
    first_age = np.zeros(n)
    np.maximum.at(first_age, ic, i_age)
    max_basket = np.zeros(n)
    np.maximum.at(max_basket, ic, i_amount)
    std_gap, max_gap = _gap_stats(ic, -i_age, n)

    recency = np.where(has_sale, last_age, first_line_age)
    tenure = np.where(has_sale, first_age, first_line_age)
    span = np.where(has_sale, first_age - last_age, 0.0)
    safe_f = np.maximum(frequency, 1.0)
    avg_ipt = np.where(frequency > 1, span / np.maximum(frequency - 1, 1.0), 0.0)
    cycle = np.maximum(np.where(frequency > 1, avg_ipt, tenure), 1.0)
    cols: dict[str, np.ndarray] = {
        "recency_days": recency,
        "frequency": frequency,
        "monetary": gross - returned,
        "gross_spend": gross,
        "avg_basket_value": gross / safe_f,
        "max_basket_value": max_basket,
        "avg_lines_per_invoice": sale_lines / safe_f,
        "avg_units_per_invoice": units / safe_f,
        "avg_unit_price": np.where(units > 0, gross / np.maximum(units, 1e-12), 0.0),
        "unique_products": unique_products.astype(np.float64),
        "avg_interpurchase_days": avg_ipt,
        "std_interpurchase_days": std_gap,
        "max_gap_days": max_gap,
        "purchase_span_days": span,
        "tenure_days": tenure,
        "recency_cycle_ratio": recency / cycle,
        "return_rate": np.clip(np.where(gross > 0, returned / np.maximum(gross, 1e-12), 0), 0, 1),
        "return_invoices": return_invoices.astype(np.float64),
    }
    for w in WINDOWS_DAYS:
        inside = i_age < w
        cols[f"spend_{w}d"] = np.bincount(ic, weights=i_amount * inside, minlength=n)
        cols[f"txn_{w}d"] = np.bincount(ic, weights=inside.astype(np.float64), minlength=n)
    prev_30 = (i_age >= 30) & (i_age < 60)
    prev_90 = (i_age >= 90) & (i_age < 180)
    spend_prev_30 = np.bincount(ic, weights=i_amount * prev_30, minlength=n)
    spend_prev_90 = np.bincount(ic, weights=i_amount * prev_90, minlength=n)
    txn_prev_90 = np.bincount(ic, weights=prev_90.astype(np.float64), minlength=n)
    cols["spend_trend_30d"] = _trend(cols["spend_30d"], spend_prev_30)
    cols["spend_trend_90d"] = _trend(cols["spend_90d"], spend_prev_90)
    cols["txn_trend_90d"] = _trend(cols["txn_90d"], txn_prev_90)
    recent = i_age < 365
    month = np.minimum(i_age[recent] // (365.0 / 12), 11).astype(np.int64)
    cols["active_months_365d"] = _distinct_per_customer(ic[recent], month, n).astype(np.float64)
    day = (i_t // SECONDS_PER_DAY).astype(np.int64)
    weekend = ((day + 3) % 7) >= 5  # 1970-01-01 was a Thursday
    cols["weekend_share"] = np.bincount(ic, weights=weekend.astype(np.float64), minlength=n) / (
        safe_f
    )
    season = 2 * np.pi * (pd.Timestamp(int(as_of_s), unit="s").day_of_year - 1) / 365.25
    cols["as_of_season_sin"] = np.full(n, np.sin(season))
    cols["as_of_season_cos"] = np.full(n, np.cos(season))
    s_category = lines.category[keep][sale]
    for category in categories:
        in_cat = s_category == lines.category_code.get(category, -1)
        spend_c = np.bincount(s_cust[in_cat], weights=s_amount[in_cat], minlength=n)
        cols[CATEGORY_SHARE_PREFIX + category] = np.where(
            gross > 0, spend_c / np.maximum(gross, 1e-12), 0
        )
    matrix = np.column_stack([cols[name] for name in names]).astype(np.float32)
    return np.asarray(cust_ids, dtype=object), matrix


def customer_feature_matrix(
    lines: pd.DataFrame,
    as_of: Any,
    names: Sequence[str],
    category_of: Mapping[str, str] | None = None,
) -> tuple[list[str], np.ndarray]:
    """Serving entry point: raw lines of a few customers -> (customer ids, float32 [n, F]).

    `names` is the manifest's `features` list; columns come back in exactly that order.
    Lines at or after `as_of` are ignored. Raises FeatureInputError naming a bad column.
    """
    categories = categories_from_features(names)
    expected = feature_names(categories)
    unknown = [n for n in names if n not in expected]
    if unknown:
        raise FeatureInputError("features", f"unknown feature name(s): {', '.join(unknown)}")
    ids, matrix = compute_customer_features(prepare_lines(lines, category_of), as_of, categories)
    order = [expected.index(n) for n in names]
    return [str(i) for i in ids], np.ascontiguousarray(matrix[:, order])


def rfm_edges(
    recency: np.ndarray, frequency: np.ndarray, monetary: np.ndarray
) -> dict[str, list[float]]:
    """Quintile edges (20/40/60/80th percentiles) of the training population."""
    qs = [20, 40, 60, 80]
    return {
        "recency_days": [float(v) for v in np.percentile(recency, qs)],
        "frequency": [float(v) for v in np.percentile(frequency, qs)],
        "monetary": [float(v) for v in np.percentile(monetary, qs)],
    }


def rfm_scores(
    recency: np.ndarray,
    frequency: np.ndarray,
    monetary: np.ndarray,
    edges: Mapping[str, Sequence[float]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RFM scores 1..5 (5 = best: most recent, most frequent, highest spend) from edges.

    A value equal to an edge falls in the lower quintile, so ties score the same everywhere.
    """

    def score(values: np.ndarray, cut: Sequence[float]) -> np.ndarray:
        return 1 + np.searchsorted(np.asarray(cut, dtype=np.float64), values, side="left")

    r = 6 - score(np.asarray(recency, dtype=np.float64), edges["recency_days"])
    f = score(np.asarray(frequency, dtype=np.float64), edges["frequency"])
    m = score(np.asarray(monetary, dtype=np.float64), edges["monetary"])
    return r.astype(np.int64), f.astype(np.int64), m.astype(np.int64)


def as_of_default(prepared: pd.DataFrame) -> datetime:
    """Midnight after the last line: every line of the data is strictly before it."""
    last = pd.Timestamp(int(prepared["_t"].max()), unit="s")
    return (last.normalize() + pd.Timedelta(days=1)).to_pydatetime()

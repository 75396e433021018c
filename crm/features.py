"""Customer features: the one implementation training and serving share (numpy/pandas only).

Input is a frame of transaction lines with the loader's columns (`LINE_COLUMNS`); a customer's
features at an as-of time use only lines strictly before it. A line is a return when its
Quantity is negative or its Invoice starts with "C"; everything else with Quantity > 0 is a
sale. Amounts are Quantity x Price in the data's currency. Days are fractional days.

Feature meanings (units):
  recency_days              days from the last sale invoice to as_of (no sale: days since the
                            customer's first line)
  frequency                 distinct sale invoices
  monetary                  net spend: sales minus returns
  gross_spend               sales only
  avg_basket_value          gross_spend / frequency
  max_basket_value          largest sale invoice
  avg_lines_per_invoice     sale lines / frequency
  avg_units_per_invoice     units sold / frequency
  avg_unit_price            gross_spend / units sold
  unique_products           distinct StockCodes bought
  avg_interpurchase_days    purchase_span_days / (frequency - 1); 0 with one purchase
  std_interpurchase_days    standard deviation of the gaps between sale invoices; 0 with < 3
  max_gap_days              longest gap between consecutive sale invoices
  purchase_span_days        last sale - first sale
  tenure_days               as_of - first sale (no sale: first line)
  recency_cycle_ratio       recency_days / typical cycle (avg_interpurchase_days when
                            frequency > 1, else tenure_days), cycle floored at 1 day
  return_rate               returned value / gross_spend, clipped to 0..1
  return_invoices           distinct return invoices
  spend_{7,30,90,180,365}d  sales in the last N days
  txn_{7,30,90,180,365}d    sale invoices in the last N days
  spend_trend_30d/_90d      (last N days - the N days before) / (their sum + 1): -1..1
  txn_trend_90d             same, on invoice counts
  active_months_365d        twelfths of the last 365 days with a sale invoice (0..12)
  weekend_share             share of sale invoices on Saturday or Sunday
  as_of_season_sin/_cos     position of as_of in the year (same for every customer at one
                            as_of), so models can learn seasonal lifts such as December
  cat_share__<category>     share of gross_spend in each category (manifest order)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

INVOICE = "Invoice"
STOCK_CODE = "StockCode"
DESCRIPTION = "Description"
QUANTITY = "Quantity"
INVOICE_DATE = "InvoiceDate"
PRICE = "Price"
CUSTOMER_ID = "Customer ID"
COUNTRY = "Country"
CATEGORY = "Category"
LINE_COLUMNS: tuple[str, ...] = (
    INVOICE,
    STOCK_CODE,
    DESCRIPTION,
    QUANTITY,
    INVOICE_DATE,
    PRICE,
    CUSTOMER_ID,
    COUNTRY,
    CATEGORY,
)
REQUIRED_COLUMNS: tuple[str, ...] = (
    INVOICE,
    STOCK_CODE,
    QUANTITY,
    INVOICE_DATE,
    PRICE,
    CUSTOMER_ID,
)
UNCATEGORISED = "other"
CATEGORY_PREFIX = "cat_share__"
WINDOWS_DAYS: tuple[int, ...] = (7, 30, 90, 180, 365)
SECONDS_PER_DAY = 86_400.0

BASE_FEATURES: tuple[str, ...] = (
    "recency_days",
    "frequency",
    "monetary",
    "gross_spend",
    "avg_basket_value",
    "max_basket_value",
    "avg_lines_per_invoice",
    "avg_units_per_invoice",
    "avg_unit_price",
    "unique_products",
    "avg_interpurchase_days",
    "std_interpurchase_days",
    "max_gap_days",
    "purchase_span_days",
    "tenure_days",
    "recency_cycle_ratio",
    "return_rate",
    "return_invoices",
    *(f"spend_{w}d" for w in WINDOWS_DAYS),
    *(f"txn_{w}d" for w in WINDOWS_DAYS),
    "spend_trend_30d",
    "spend_trend_90d",
    "txn_trend_90d",
    "active_months_365d",
    "weekend_share",
    "as_of_season_sin",
    "as_of_season_cos",
)
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
    return [*BASE_FEATURES, *(CATEGORY_PREFIX + c for c in categories)]


def categories_from_features(names: Sequence[str]) -> list[str]:
    return [n[len(CATEGORY_PREFIX) :] for n in names if n.startswith(CATEGORY_PREFIX)]


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


def prepare_lines(
    lines: pd.DataFrame, category_of: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Coerce a lines frame to the shared dtypes; returns a new frame with derived columns.

    Derived: `_t` epoch seconds, `_ret` return flag, `_qty` signed units (a "C" invoice is
    always negative), `_amount` signed Quantity x Price. A missing or empty Category is taken
    from `category_of` (StockCode -> category) when given, else `UNCATEGORISED`.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in lines.columns]
    if missing:
        raise FeatureInputError(missing[0], "column missing from the transaction lines")
    out = pd.DataFrame(index=pd.RangeIndex(len(lines)))
    out[INVOICE] = lines[INVOICE].astype(str).str.strip().to_numpy()
    out[STOCK_CODE] = lines[STOCK_CODE].astype(str).str.strip().to_numpy()
    out[CUSTOMER_ID] = lines[CUSTOMER_ID].fillna("").astype(str).str.strip().to_numpy()
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
        category = lines[CATEGORY].fillna("").astype(str).str.strip().to_numpy()
    else:
        category = np.full(len(lines), "", dtype=object)
    category = pd.Series(category, dtype=object)
    blank = category.eq("")
    if blank.any():
        mapped = out.loc[blank.to_numpy(), STOCK_CODE].map(dict(category_of or {}))
        category[blank] = mapped.fillna(UNCATEGORISED).to_numpy()
    out[CATEGORY] = category.to_numpy()
    cancelled = out[INVOICE].str.upper().str.startswith("C").to_numpy(dtype=bool)
    out["_ret"] = (out[QUANTITY].to_numpy() < 0) | cancelled
    qty = np.abs(out[QUANTITY].to_numpy())
    out["_qty"] = np.where(out["_ret"].to_numpy(), -qty, qty)
    out["_amount"] = out["_qty"].to_numpy() * out[PRICE].to_numpy()
    for col in (DESCRIPTION, COUNTRY):
        out[col] = lines[col].fillna("").astype(str).to_numpy() if col in lines.columns else ""
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


def _trend(recent: np.ndarray, before: np.ndarray) -> np.ndarray:
    return (recent - before) / (recent + before + 1.0)


def compute_customer_features(
    prepared: pd.DataFrame, as_of: Any, categories: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(customer ids, float32 [n, F]) for every customer with a line strictly before as_of.

    `prepared` comes from `prepare_lines`. Customers appear in order of first appearance in
    the frame. Columns follow `feature_names(categories)`.
    """
    as_of_s = timestamp_seconds(as_of)
    frame = prepared.loc[prepared["_t"].to_numpy() < as_of_s]
    names = feature_names(categories)
    if frame.empty:
        return np.array([], dtype=object), np.zeros((0, len(names)), dtype=np.float32)
    cust_codes, cust_ids = pd.factorize(frame[CUSTOMER_ID], sort=False)
    n = len(cust_ids)
    age = (as_of_s - frame["_t"].to_numpy()) / SECONDS_PER_DAY
    ret = frame["_ret"].to_numpy()
    amount = frame["_amount"].to_numpy()
    sale = ~ret

    first_line_age = np.zeros(n)
    np.maximum.at(first_line_age, cust_codes, age)
    returned = np.bincount(cust_codes[ret], weights=-amount[ret], minlength=n)
    return_invoices = (
        frame.loc[ret, [CUSTOMER_ID, INVOICE]]
        .drop_duplicates()[CUSTOMER_ID]
        .map(pd.Series(np.arange(n), index=cust_ids))
    )
    return_invoices = np.bincount(return_invoices.to_numpy(dtype=np.int64), minlength=n)

    sales = frame.loc[sale]
    s_cust = cust_codes[sale]
    s_age = age[sale]
    s_amount = amount[sale]
    s_units = sales["_qty"].to_numpy()
    unique_products = np.bincount(
        pd.DataFrame({"c": s_cust, "p": sales[STOCK_CODE].to_numpy()}).drop_duplicates()["c"],
        minlength=n,
    )
    inv = (
        pd.DataFrame(
            {
                "c": s_cust,
                "i": sales[INVOICE].to_numpy(),
                "age": s_age,
                "amount": s_amount,
                "units": s_units,
                "t": sales["_t"].to_numpy(),
            }
        )
        .groupby(["c", "i"], sort=False)
        .agg(
            age=("age", "max"),
            amount=("amount", "sum"),
            units=("units", "sum"),
            lines=("age", "size"),
            t=("t", "min"),
        )
        .reset_index()
        .sort_values(["c", "age"], ascending=[True, False], kind="mergesort")
    )
    ic = inv["c"].to_numpy(dtype=np.int64)
    i_age = inv["age"].to_numpy()
    i_amount = inv["amount"].to_numpy()
    frequency = np.bincount(ic, minlength=n).astype(np.float64)
    gross = np.bincount(ic, weights=i_amount, minlength=n)
    units = np.bincount(ic, weights=inv["units"].to_numpy(), minlength=n)
    sale_lines = np.bincount(ic, weights=inv["lines"].to_numpy(), minlength=n)
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
    buckets = pd.DataFrame({"c": ic[recent], "b": month})
    cols["active_months_365d"] = np.bincount(
        buckets.drop_duplicates()["c"].to_numpy(dtype=np.int64), minlength=n
    ).astype(np.float64)
    weekday = inv["t"].to_numpy().astype("datetime64[s]").astype("datetime64[D]")
    weekend = ((weekday.astype(np.int64) + 3) % 7) >= 5  # 1970-01-01 was a Thursday
    cols["weekend_share"] = np.bincount(ic, weights=weekend.astype(np.float64), minlength=n) / (
        safe_f
    )
    season = 2 * np.pi * (pd.Timestamp(int(as_of_s), unit="s").day_of_year - 1) / 365.25
    cols["as_of_season_sin"] = np.full(n, np.sin(season))
    cols["as_of_season_cos"] = np.full(n, np.cos(season))
    s_category = sales[CATEGORY].to_numpy()
    for category in categories:
        in_cat = s_category == category
        spend_c = np.bincount(s_cust[in_cat], weights=s_amount[in_cat], minlength=n)
        cols[CATEGORY_PREFIX + category] = np.where(
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

"""The product catalogue and daily units panel that demand, snapshots and inventory share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm.columns import CATEGORY, DESCRIPTION, PRICE, STOCK_CODE
from crm.demand import daily_units
from crm.features import SECONDS_PER_DAY, timestamp_seconds

RECENT_PRICE_DAYS = 90


@dataclass(frozen=True)
class ProductPanel:
    """Daily units sold per product; day 0 is `start_day`, the last column is the day before
    `end_day` (the as-of day, exclusive)."""

    catalogue: pd.DataFrame
    units: np.ndarray
    start_day: np.datetime64
    end_day: np.datetime64
    first_sale: np.ndarray

    @property
    def days(self) -> int:
        return self.units.shape[1]

    def day(self, index: int) -> np.datetime64:
        return self.start_day + np.timedelta64(index, "D")


def build_panel(prepared: pd.DataFrame, as_of: pd.Timestamp) -> ProductPanel:
    """Catalogue (product_id, description, category, unit_price) and units of sales before as_of.

    unit_price is the median sale price over the last 90 days the product sold (all its sales
    when it sold nothing then); description and category are the most recent ones seen.
    """
    end_s = timestamp_seconds(as_of)
    sales = prepared.loc[~prepared["_ret"].to_numpy() & (prepared["_t"].to_numpy() < end_s)]
    t = sales["_t"].to_numpy()
    start_day = np.datetime64(int(t.min() // SECONDS_PER_DAY), "D")
    end_day = np.datetime64(pd.Timestamp(as_of).normalize().date(), "D")
    codes, products = pd.factorize(sales[STOCK_CODE], sort=True)
    day_index = (t // SECONDS_PER_DAY).astype(np.int64) - start_day.astype(np.int64)
    days = int((end_day - start_day).astype(np.int64))
    units = daily_units(codes, day_index, sales["_qty"].to_numpy(), len(products), days)
    first_sale = np.full(len(products), days, dtype=np.int64)
    np.minimum.at(first_sale, codes, day_index)

    frame = pd.DataFrame(
        {
            "code": codes,
            "t": t,
            "price": sales[PRICE].to_numpy(),
            "description": sales[DESCRIPTION].to_numpy(),
            "category": sales[CATEGORY].to_numpy(),
        }
    ).sort_values("t", kind="mergesort")
    latest = frame.groupby("code").tail(1).set_index("code").sort_index()
    last_t = frame.groupby("code")["t"].max()
    recent = (
        frame["t"].to_numpy()
        >= last_t.loc[frame["code"]].to_numpy() - RECENT_PRICE_DAYS * SECONDS_PER_DAY
    )
    price = frame.loc[recent].groupby("code")["price"].median().sort_index()
    catalogue = pd.DataFrame(
        {
            "product_id": np.asarray(products, dtype=object),
            "description": latest["description"].to_numpy(),
            "category": latest["category"].to_numpy(),
            "unit_price": price.round(4).to_numpy(),
        }
    )
    return ProductPanel(catalogue, units, start_day, end_day, first_sale)

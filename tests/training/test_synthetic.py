"""The synthetic retailer: deterministic, shaped like real data, with the promised structure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crm.columns import EXPORT_COLUMNS
from training.loader import load_transactions
from training.synthetic import (
    INVENTORY_COLUMNS,
    SyntheticConfig,
    generate,
    synthetic_inventory,
    write_csv,
)

CONFIG = SyntheticConfig(customers=1500, days=730, seed=21)


@pytest.fixture(scope="module")
def lines() -> pd.DataFrame:
    frame = generate(CONFIG).lines.copy()
    frame["InvoiceDate"] = pd.to_datetime(frame["InvoiceDate"])
    return frame


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path) -> None:
    small = SyntheticConfig(customers=200, days=200, seed=4)
    paths = []
    for i, cfg in enumerate([small, small, SyntheticConfig(customers=200, days=200, seed=5)]):
        paths.append(tmp_path / f"{i}.csv")
        write_csv(generate(cfg), str(paths[-1]))
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()


def test_columns_and_loader_round_trip(tmp_path: Path) -> None:
    data = generate(SyntheticConfig(customers=200, days=200, seed=4))
    assert list(data.lines.columns) == [*EXPORT_COLUMNS, "Category"]
    path = tmp_path / "s.csv"
    write_csv(data, str(path))
    assert len(load_transactions(path).lines) == len(data.lines)


def test_categories_returns_and_dirt(lines: pd.DataFrame) -> None:
    sold = lines.loc[lines["Quantity"] > 0, "Category"]
    assert {"electronics", "grocery", "sports", "home"} <= set(sold)
    returns = lines.loc[lines["Invoice"].str.startswith("C")]
    assert len(returns) > 0.02 * len(lines)
    assert (returns["Quantity"] < 0).all()
    by_category = returns.groupby("Category")["Quantity"].size() / lines.groupby("Category").size()
    assert by_category["electronics"] > 3 * by_category["grocery"]
    assert (lines["Customer ID"] == "").sum() > 0  # guest invoices for the cleaning rules
    assert (lines["StockCode"] == "POST").sum() > 0
    assert lines.duplicated().sum() > 0


def test_staggered_acquisition_and_dropout(lines: pd.DataFrame) -> None:
    sales = lines.loc[(lines["Quantity"] > 0) & (lines["Customer ID"] != "")]
    first = sales.groupby("Customer ID")["InvoiceDate"].min()
    last = sales.groupby("Customer ID")["InvoiceDate"].max()
    start = lines["InvoiceDate"].min()
    first_day = (first - start).dt.days
    assert (first_day < 60).mean() > 0.25  # a base of customers from the start
    assert (first_day > 365).mean() > 0.2  # and a steady stream of new ones
    end = lines["InvoiceDate"].max()
    assert ((end - last).dt.days > 180).mean() > 0.3  # many have dropped out
    invoices = sales.groupby("Customer ID")["Invoice"].nunique()
    assert invoices.quantile(0.9) >= 4 * invoices.median() / 2  # heterogeneous purchase rates


def test_weekly_and_yearly_seasonality(lines: pd.DataFrame) -> None:
    invoices = lines.loc[lines["Quantity"] > 0].drop_duplicates("Invoice")
    per_day = invoices.groupby(invoices["InvoiceDate"].dt.normalize()).size()
    per_day = per_day.reindex(pd.date_range(per_day.index.min(), per_day.index.max()), fill_value=0)
    weekday = per_day[per_day.index.day_of_week < 5].mean()
    weekend = per_day[per_day.index.day_of_week >= 5].mean()
    assert weekend < 0.8 * weekday
    by_month = per_day.groupby(per_day.index.month).mean()
    assert by_month[12] > 1.2 * by_month[[6, 7, 8]].mean()


def test_inventory_mix() -> None:
    catalogue = pd.DataFrame(
        {
            "product_id": [f"P{i}" for i in range(400)],
            "category": ["home"] * 400,
            "unit_price": np.linspace(1, 40, 400),
        }
    )
    rate = np.where(np.arange(400) < 40, 0.0, 2.0)
    inventory, status = synthetic_inventory(catalogue, rate, seed=1)
    assert list(inventory.columns) == list(INVENTORY_COLUMNS)
    counts = status.value_counts()
    assert set(counts.index) == {"dead_stock", "stockout_risk", "overstock", "healthy"}
    cover = inventory["stock_on_hand"] / np.maximum(rate, 1e-9)
    risky = (status == "stockout_risk").to_numpy()
    assert (cover[risky] < inventory["lead_time_days"][risky]).all()
    assert (cover[(status == "overstock").to_numpy()] >= 89).all()
    assert (inventory.loc[(status == "dead_stock").to_numpy(), "stock_on_hand"] > 0).all()
    assert (inventory["unit_cost"] < inventory["unit_price"]).all()

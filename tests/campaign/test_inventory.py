"""Inventory diagnosis: cover, the four statuses and their thresholds, item checks, the CSV."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from server.campaign.assumptions import Assumptions, load_assumptions
from server.campaign.inventory import (
    diagnose,
    item_violations,
    load_inventory_snapshot,
    read_inventory_csv,
)
from server.campaign.types import InventoryItem, Status

A = Assumptions(stockout_cover_days=7, overstock_cover_days=60, dead_stock_daily_units=0.05)


def item(stock: float = 100, on_order: float = 0, lead: float = 0, **kw: object) -> InventoryItem:
    base = dict(
        product_id="P", stock_on_hand=stock, unit_cost=4, unit_price=10,
        units_on_order=on_order, lead_time_days=lead,
    )  # fmt: skip
    return InventoryItem(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "case",
    [
        (70, 0, 0, 10, Status.STOCKOUT_RISK, 7.0),  # at the threshold: at risk
        (71, 0, 0, 10, Status.HEALTHY, 7.1),
        (600, 0, 0, 10, Status.HEALTHY, 60.0),  # at the overstock threshold: still healthy
        (601, 0, 0, 10, Status.OVERSTOCK, 60.1),
        (100, 510, 0, 10, Status.OVERSTOCK, 61.0),  # units on order count towards cover
        (100, 500, 14, 10, Status.STOCKOUT_RISK, 60.0),  # on hand lasts 10 days < 14 lead
        (140, 0, 14, 10, Status.HEALTHY, 14.0),  # lasts exactly the lead time
        (5, 0, 0, 0.05, Status.DEAD_STOCK, 100.0),
        (5, 0, 0, 0.0, Status.DEAD_STOCK, math.inf),
        (0, 0, 0, 0.0, Status.HEALTHY, 0.0),  # nothing in stock, nothing selling
        (0, 0, 0, 3.0, Status.STOCKOUT_RISK, 0.0),
    ],
)
def test_status_and_cover(case: tuple[float, float, float, float, Status, float]) -> None:
    stock, on_order, lead, daily, status, cover = case
    pos = diagnose(item(stock, on_order, lead), daily, A)
    assert pos.status is status
    assert pos.days_of_cover == pytest.approx(cover)


def test_cover_equals_stock_plus_order_over_demand() -> None:
    pos = diagnose(item(130, 70, 0), 8.0, A)
    assert pos.days_of_cover == pytest.approx(25.0)
    assert pos.on_hand_cover_days == pytest.approx(130 / 8)
    assert pos.forecast_daily_units == 8.0


def test_cover_is_compared_without_float_noise() -> None:
    # The demand model answers in float32: 1 unit at float32(2/28) a day "lasts" 13.99999985
    # days, which must still count as the 14 days of lead time.
    daily = float(np.float32(2 / 28))
    assert 1 / daily < 14
    assert diagnose(item(1, lead=14), daily, A).status is Status.HEALTHY
    assert diagnose(item(1, lead=14.01), daily, A).status is Status.STOCKOUT_RISK
    assert float(np.float32(0.7)) / float(np.float32(0.1)) < 7
    assert diagnose(item(float(np.float32(0.7))), float(np.float32(0.1)), A).days_of_cover == 7


def test_thresholds_come_from_the_assumptions() -> None:
    tight = Assumptions(stockout_cover_days=2, overstock_cover_days=10)
    assert diagnose(item(50), 5.0, A).status is Status.HEALTHY
    assert diagnose(item(50), 5.0, tight).status is Status.HEALTHY
    assert diagnose(item(51), 5.0, tight).status is Status.OVERSTOCK
    assert diagnose(item(10), 5.0, tight).status is Status.STOCKOUT_RISK


def test_no_forecast_is_not_diagnosed() -> None:
    assert diagnose(item(), None, A).status is Status.UNSPECIFIED


def test_item_violations_name_every_field() -> None:
    items = [
        item(),
        item(stock=-1, product_id="Q"),
        item(product_id="P"),
        item(product_id=""),
        item(product_id="R", unit_price=0, unit_cost=math.nan, lead_time_days=-2),
        item(product_id="S", units_on_order=math.inf, category="x" * 65),
    ]
    found = {(v.field, v.description.split(" ")[0]) for v in item_violations(items)}
    assert {f for f, _ in found} == {
        "inventory[1].stock_on_hand",
        "inventory[2].product_id",
        "inventory[3].product_id",
        "inventory[4].unit_price",
        "inventory[4].unit_cost",
        "inventory[4].lead_time_days",
        "inventory[5].units_on_order",
        "inventory[5].category",
    }
    dup = next(v for v in item_violations(items) if v.field == "inventory[2].product_id")
    assert "inventory[0]" in dup.description
    assert item_violations([item()]) == []


CSV = (
    "product_id,stock_on_hand,unit_cost,unit_price,units_on_order,lead_time_days,category\n"
    "A1,10,2.5,5,0,7,home\n"
    "B2,0,1,2,30,3,\n"
)


def test_csv_and_registry_loader(tmp_path: Path) -> None:
    items = read_inventory_csv(CSV)
    assert items == [
        InventoryItem("A1", 10, 2.5, 5, 0, 7, "home"),
        InventoryItem("B2", 0, 1, 2, 30, 3, ""),
    ]
    (tmp_path / "inventory.csv").write_text(CSV)
    assert load_inventory_snapshot(tmp_path, {}) == tuple(items)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("product_id,stock_on_hand\nA,1\n", "lacks column"),
        (CSV + "C3,abc,1,2,0,0,home\n", "line 4"),
        (CSV + "A1,1,1,2,0,0,home\n", "rows[2].product_id"),
        (CSV + "C3,1,1,-2,0,0,home\n", "rows[2].unit_price"),
    ],
)
def test_bad_csv_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_inventory_csv(text)


def test_assumptions_overrides_merge_and_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "campaign_assumptions.json"
    assert load_assumptions(path) == Assumptions()
    path.write_text('{"response_rate_by_segment": {"VIP": 0.2}, "overstock_cover_days": 90}')
    merged = load_assumptions(path)
    assert merged.response_rate("VIP") == 0.2
    assert merged.response_rate("Loyal") == Assumptions().response_rate("Loyal")
    assert merged.overstock_cover_days == 90
    for bad in (
        '{"response_rate_by_segment": {"VIP": 1.5}}',
        '{"no_such_assumption": 1}',
        '{"stockout_cover_days": "7"}',
        '{"overstock_cover_days": 3}',
        "[1]",
        "{",
    ):
        path.write_text(bad)
        with pytest.raises(ValueError, match=r"campaign_assumptions\.json"):
            load_assumptions(path)

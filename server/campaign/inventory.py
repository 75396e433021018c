"""Inventory diagnosis (days of cover, status), item checks, and the default snapshot's loader.

Status rules, in this order, with d = forecast mean units per day over the plan horizon:
  DEAD_STOCK     d <= dead_stock_daily_units and there is stock on hand
                 (no stock and no demand is HEALTHY: nothing to act on);
  STOCKOUT_RISK  days of cover <= stockout_cover_days, or the stock on hand runs out before
                 the lead time has passed (on_hand / d < lead_time_days): ordered units, and any
                 order placed today, arrive too late;
  OVERSTOCK      days of cover > overstock_cover_days;
  HEALTHY        otherwise.
Days of cover = (stock_on_hand + units_on_order) / d, rounded to 1e-4 days (the forecast is
float32, so exact ratios such as 1 / (1/14) must not land a hair below the threshold); infinite
when d is 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from crm.inventory import parse_inventory_csv
from server.campaign.assumptions import Assumptions
from server.campaign.types import InventoryItem, Position, Status
from server.errors import FieldViolation

INVENTORY_FILE = "inventory.csv"
MAX_PRODUCT_ID = 64
MAX_CATEGORY = 64
# Bounds that keep every amount a plan computes finite and its cents exact (the planner works in
# integer cents): at most MAX_UNITS units at MAX_UNIT_MONEY each is 1e18 money.
MAX_UNITS = 1e9  # stock_on_hand, units_on_order
MAX_UNIT_MONEY = 1e9  # unit_cost, unit_price
MAX_LEAD_TIME_DAYS = 3650
COVER_DECIMALS = 4  # ~9 s; float32 forecasts: 1 unit at float32(1/14) a day lasts 14 days


def cover_days(units: float, daily: float) -> float:
    if daily > 0:
        return round(units / daily, COVER_DECIMALS)
    return math.inf if units > 0 else 0.0


def diagnose(item: InventoryItem, daily_units: float | None, assumptions: Assumptions) -> Position:
    """The item's cover and status; `daily_units` None = no forecast (status UNSPECIFIED)."""
    if daily_units is None:
        return Position(item, 0.0, 0.0, 0.0, Status.UNSPECIFIED)
    d = max(0.0, float(daily_units))
    cover = cover_days(item.stock_on_hand + item.units_on_order, d)
    on_hand = cover_days(item.stock_on_hand, d)
    if d <= assumptions.dead_stock_daily_units:
        status = Status.DEAD_STOCK if item.stock_on_hand > 0 else Status.HEALTHY
    elif cover <= assumptions.stockout_cover_days or on_hand < item.lead_time_days:
        status = Status.STOCKOUT_RISK
    elif cover > assumptions.overstock_cover_days:
        status = Status.OVERSTOCK
    else:
        status = Status.HEALTHY
    return Position(item, d, cover, on_hand, status)


def diagnose_all(
    items: Sequence[InventoryItem],
    daily_units: Mapping[str, float],
    assumptions: Assumptions,
) -> list[Position]:
    return [diagnose(i, daily_units.get(i.product_id), assumptions) for i in items]


_ITEM_BOUNDS = {
    "stock_on_hand": MAX_UNITS,
    "unit_cost": MAX_UNIT_MONEY,
    "units_on_order": MAX_UNITS,
    "lead_time_days": MAX_LEAD_TIME_DAYS,
}


def item_violations(
    items: Iterable[InventoryItem], prefix: str = "inventory"
) -> list[FieldViolation]:
    """Every problem of every item, named by field path, e.g. `inventory[2].stock_on_hand`."""
    problems: list[FieldViolation] = []
    first_index: dict[str, int] = {}
    for i, item in enumerate(items):
        path = f"{prefix}[{i}]"
        pid = item.product_id
        if not pid.strip():
            problems.append(FieldViolation(f"{path}.product_id", "required"))
        elif pid != pid.strip() or len(pid) > MAX_PRODUCT_ID:
            problems.append(
                FieldViolation(
                    f"{path}.product_id",
                    f"must be 1..{MAX_PRODUCT_ID} characters without surrounding spaces",
                )
            )
        elif pid in first_index:
            problems.append(
                FieldViolation(
                    f"{path}.product_id", f"duplicate of {prefix}[{first_index[pid]}].product_id"
                )
            )
        else:
            first_index[pid] = i
        for name, most in _ITEM_BOUNDS.items():
            value = getattr(item, name)
            if not (math.isfinite(value) and 0 <= value <= most):
                problems.append(FieldViolation(f"{path}.{name}", f"must be a number 0..{most:g}"))
        if not (math.isfinite(item.unit_price) and 0 < item.unit_price <= MAX_UNIT_MONEY):
            problems.append(
                FieldViolation(
                    f"{path}.unit_price", f"must be a number > 0 and at most {MAX_UNIT_MONEY:g}"
                )
            )
        if len(item.category) > MAX_CATEGORY:
            problems.append(
                FieldViolation(f"{path}.category", f"at most {MAX_CATEGORY} characters")
            )
    return problems


def read_inventory_csv(text: str) -> list[InventoryItem]:
    """Rows of an inventory CSV (crm.inventory format), range-checked; ValueError on bad rows."""
    items = parse_inventory_csv(text)
    problems = item_violations(items, "rows")
    if problems:
        first = problems[0]
        raise ValueError(f"inventory CSV: {first.field}: {first.description}")
    return items


def load_inventory_snapshot(
    version_dir: Path, manifest: Mapping[str, Any]
) -> tuple[InventoryItem, ...]:
    """Registry loader for kind `inventory_snapshot`: the default inventory of a plan."""
    return tuple(read_inventory_csv((version_dir / INVENTORY_FILE).read_text(encoding="utf-8")))

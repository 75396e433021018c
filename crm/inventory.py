"""The inventory CSV: one format for training's default snapshot, the server and the client.

Columns: product_id, stock_on_hand, unit_cost, unit_price, units_on_order, lead_time_days,
category. The first four are required; the others default to 0, 0 and "" (category from the
catalogue). Money is in the data's currency.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

INVENTORY_COLUMNS: tuple[str, ...] = (
    "product_id",
    "stock_on_hand",
    "unit_cost",
    "unit_price",
    "units_on_order",
    "lead_time_days",
    "category",
)
REQUIRED_COLUMNS = INVENTORY_COLUMNS[:4]


@dataclass(frozen=True)
class InventoryItem:
    """One product's stock position."""

    product_id: str
    stock_on_hand: float
    unit_cost: float
    unit_price: float
    units_on_order: float = 0.0
    lead_time_days: float = 0.0
    category: str = ""


def parse_inventory_csv(text: str, source: str = "inventory CSV") -> list[InventoryItem]:
    """Typed rows; ValueError naming the source and line of the first unreadable row.

    Values are parsed, not judged: range checks (negative stock, ...) belong to the caller,
    which reports them with field paths.
    """
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise ValueError(f"{source} lacks column(s) {', '.join(missing)}")
    items: list[InventoryItem] = []
    for line, row in enumerate(reader, start=2):
        try:
            items.append(
                InventoryItem(
                    product_id=(row["product_id"] or "").strip(),
                    stock_on_hand=float(row["stock_on_hand"]),
                    unit_cost=float(row["unit_cost"]),
                    unit_price=float(row["unit_price"]),
                    units_on_order=float(row.get("units_on_order") or 0),
                    lead_time_days=float(row.get("lead_time_days") or 0),
                    category=(row.get("category") or "").strip(),
                )
            )
        except (TypeError, ValueError) as err:
            raise ValueError(f"{source} line {line}: {err}") from None
    return items

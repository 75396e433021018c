"""Demand forecasts: the demand ONNX model over rows built by crm.demand from the product snapshot.

The product snapshot holds each product's recent daily units (returns excluded) up to the day
before `origin`, with its catalogue price and category; `crm.demand.demand_rows` turns that into
exactly the rows training built. The whole catalogue's 7-day forecast is one model call, cached
per (demand version, snapshot version); a shorter horizon is a prefix (rows for day h depend only
on h), so every request is a lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crm.demand import MAX_HORIZON_DAYS, demand_rows

Outputs = Mapping[str, np.ndarray]

UNITS_OUTPUT = "units"
PRODUCTS_FILE = "products.npz"


@dataclass(frozen=True, eq=False)
class ProductHistory:
    """The served product snapshot: recent daily units per product plus its catalogue entry."""

    product_ids: tuple[str, ...]
    daily_units: np.ndarray  # [P, L] units sold per day, newest last, ending the day before origin
    unit_price: np.ndarray  # [P] catalogue price, in the data's currency
    category: tuple[str, ...]
    origin: np.datetime64  # first forecast day (UTC midnight)
    description: tuple[str, ...] = ()
    version: int = 0
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n = len(self.product_ids)
        if self.daily_units.ndim != 2 or self.daily_units.shape[0] != n:
            raise ValueError(f"daily_units {self.daily_units.shape} does not match {n} products")
        if self.unit_price.shape != (n,) or len(self.category) != n:
            raise ValueError("unit_price and category must have one entry per product")
        object.__setattr__(self, "index", {p: i for i, p in enumerate(self.product_ids)})

    def category_of(self, product_id: str) -> str:
        i = self.index.get(product_id)
        return self.category[i] if i is not None else ""


def forecast_all(
    run: Callable[[np.ndarray], Outputs], categories: Sequence[str], products: ProductHistory
) -> np.ndarray:
    """[P, 7] expected units per product and day (>= 0), one model call through `run` (the
    executor, like every inference), for a demand model trained on `categories`."""
    if not products.product_ids:
        return np.zeros((0, MAX_HORIZON_DAYS))
    rows = demand_rows(
        products.daily_units,
        products.origin,
        products.unit_price,
        products.category,
        list(categories),
        horizon=MAX_HORIZON_DAYS,
    )
    units = np.asarray(run(rows)[UNITS_OUTPUT], dtype=np.float64).reshape(-1)
    return np.clip(units.reshape(len(products.product_ids), MAX_HORIZON_DAYS), 0.0, None)


def mean_daily(forecasts: np.ndarray, horizon: int) -> np.ndarray:
    return forecasts[:, :horizon].mean(axis=1) if len(forecasts) else np.zeros(0)


def pick(products: ProductHistory, product_ids: Sequence[str]) -> list[int | None]:
    return [products.index.get(p) for p in product_ids]


def load_product_snapshot(version_dir: Path, manifest: Mapping[str, Any]) -> ProductHistory:
    """Registry loader for kind `product_snapshot` (artifact `products`, written by training).

    products.npz: product_ids [P], daily_units [P, history_days] (oldest first, ending the day
    before the manifest's `origin`), unit_price [P], category [P], description [P].
    """
    with np.load(version_dir / PRODUCTS_FILE, allow_pickle=False) as data:
        return ProductHistory(
            product_ids=tuple(str(p) for p in data["product_ids"]),
            daily_units=np.asarray(data["daily_units"], dtype=np.float64),
            unit_price=np.asarray(data["unit_price"], dtype=np.float64),
            category=tuple(str(c) for c in data["category"]),
            origin=np.datetime64(str(manifest["origin"])[:10], "D"),
            description=tuple(str(d) for d in data["description"]),
            version=int(manifest["version"]),
        )

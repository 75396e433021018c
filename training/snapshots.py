"""Artifacts that are data, not models: customer features, products and inventory."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd

from crm.artifacts import KIND_FEATURES, KIND_INVENTORY, KIND_PRODUCTS
from crm.demand import HISTORY_DAYS
from crm.history import HISTORY_FILE, history_arrays
from training.observations import FeatureStore
from training.products import ProductPanel
from training.synthetic import synthetic_inventory

RECENT_RATE_DAYS = 28


def _npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, lineterminator="\n").encode()


def feature_snapshot(
    store: FeatureStore, as_of: pd.Timestamp
) -> tuple[dict[str, bytes], dict[str, Any]]:
    """Every customer's features as of the data's end, for scoring by customer_id, and the
    cleaned lines they came from, so the server ages them and adds new lines."""
    ids, values = store.at(as_of)
    files = {
        "snapshot.npz": _npz(
            customer_ids=np.asarray([str(i) for i in ids], dtype=str),
            values=values.astype(np.float32),
            feature_names=np.asarray(store.names, dtype=str),
        ),
        HISTORY_FILE: _npz(**history_arrays(store.prepared)),
    }
    manifest = {
        "kind": KIND_FEATURES,
        "as_of": as_of.isoformat(),
        "features": list(store.names),
        "rows": len(ids),
        "categories": list(store.categories),
        "builder": "crm.features.compute_customer_features",
        "contents": {
            "customer_ids": "str [N]",
            "values": "float32 [N, F] in `features` order",
            "feature_names": "str [F]",
            HISTORY_FILE: "the cleaned lines before as_of (crm.history): the server recomputes "
            "features from them as of each day and adds ingested lines",
        },
        # The server recomputes these rows as of its own day (crm.history), so by-id scores age.
        "serving_ages_features": True,
    }
    return files, manifest


def product_snapshot(
    panel: ProductPanel, categories: list[str]
) -> tuple[dict[str, bytes], dict[str, Any]]:
    """Catalogue plus the last HISTORY_DAYS of daily units: the server forecasts any product."""
    recent = panel.units[:, -HISTORY_DAYS:].astype(np.float32)
    catalogue = panel.catalogue
    files = {
        "products.npz": _npz(
            product_ids=np.asarray(catalogue["product_id"].astype(str), dtype=str),
            daily_units=recent,
            unit_price=catalogue["unit_price"].to_numpy(dtype=np.float64),
            category=np.asarray(catalogue["category"].astype(str), dtype=str),
            description=np.asarray(catalogue["description"].astype(str), dtype=str),
        ),
        "products.csv": _csv(catalogue[["product_id", "description", "category", "unit_price"]]),
    }
    manifest = {
        "kind": KIND_PRODUCTS,
        "rows": len(catalogue),
        "categories": list(categories),
        "history_days": int(recent.shape[1]),
        "history_end": str(panel.end_day - np.timedelta64(1, "D")),
        "origin": str(panel.end_day),
        "row_builder": "crm.demand.demand_rows(daily_units, origin, unit_price, category, "
        "categories)",
        "contents": {
            "products.npz": "product_ids str [P]; daily_units float32 [P, history_days], oldest "
            "first, last column = history_end; unit_price float64 [P] (median of recent sales); "
            "category str [P]; description str [P]",
            "products.csv": "the same catalogue as text: product_id, description, category, "
            "unit_price",
        },
    }
    return files, manifest


def inventory_snapshot(panel: ProductPanel, seed: int) -> tuple[dict[str, bytes], dict[str, Any]]:
    """A default stock position per product (synthetic: the data has no inventory)."""
    rate = panel.units[:, -RECENT_RATE_DAYS:].mean(axis=1)
    inventory, status = synthetic_inventory(panel.catalogue, rate, seed)
    manifest = {
        "kind": KIND_INVENTORY,
        "as_of": str(panel.end_day),
        "rows": len(inventory),
        "columns": list(inventory.columns),
        "source": "training.synthetic.synthetic_inventory: generated from each product's "
        f"mean daily units over the last {RECENT_RATE_DAYS} days; not observed stock",
        "generated_mix": {k: int(v) for k, v in status.value_counts().sort_index().items()},
        "seed": seed,
    }
    return {"inventory.csv": _csv(inventory)}, manifest

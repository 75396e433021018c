"""The customer feature snapshot: scoring by customer_id without the customer's history."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crm.history import HISTORY_FILE

SNAPSHOT_FILE = "snapshot.npz"


class FeatureSnapshot:
    """Feature rows as of the data's end, keyed by customer id; immutable once loaded."""

    # Set on snapshots server.freshness derives. `parent`: the snapshot this one was patched
    # from and the rows that differ (a prefix of rows is shared), so model outputs are patched
    # too. `precomputable` False: rows computed for one call (an explicit as-of time), not worth
    # scoring as a whole.
    parent: tuple[int, np.ndarray] | None = None
    precomputable: bool = True

    def __init__(
        self,
        customer_ids: Sequence[str],
        values: np.ndarray,
        feature_names: Sequence[str],
        as_of: str = "",
        version: int = 0,
        *,
        index: dict[str, int] | None = None,
        history: Path | None = None,
    ) -> None:
        given = isinstance(customer_ids, np.ndarray) and customer_ids.dtype == object
        # a derived snapshot (server.freshness) passes its parent's str ids: no copy per row
        self.customer_ids = (
            customer_ids
            if given and index is not None
            else np.asarray([str(c) for c in customer_ids], dtype=object)
        )
        self.values = np.ascontiguousarray(values, dtype=np.float32)
        self.feature_names = tuple(feature_names)
        self.as_of = as_of
        self.version = version
        if self.values.shape != (len(self.customer_ids), len(self.feature_names)):
            raise ValueError(
                f"snapshot values {self.values.shape} do not match "
                f"{len(self.customer_ids)} ids x {len(self.feature_names)} features"
            )
        # `index` lets a derived snapshot share its parent's id -> row map (server.freshness).
        self._row = index if index is not None else {c: i for i, c in enumerate(self.customer_ids)}
        # The lines these rows came from (crm.history), when training shipped them.
        self.history = history
        self._columns: dict[tuple[str, ...], np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.customer_ids)

    @functools.cached_property
    def as_of_ns(self) -> int | None:
        """The as-of time of the rows, in ns since the epoch (None when not stated)."""
        return int(pd.Timestamp(self.as_of).value) if self.as_of else None

    @property
    def index(self) -> dict[str, int]:
        return self._row

    def row_of(self, customer_id: str) -> int | None:
        return self._row.get(customer_id)

    def columns_for(self, names: Sequence[str]) -> np.ndarray:
        """Column indexes giving `names` in order; KeyError naming a feature it lacks."""
        key = tuple(names)
        found = self._columns.get(key)
        if found is None:
            index = {n: i for i, n in enumerate(self.feature_names)}
            missing = [n for n in key if n not in index]
            if missing:
                raise KeyError(f"feature snapshot lacks {', '.join(missing)}")
            found = self._columns[key] = np.array([index[n] for n in key], dtype=np.int64)
        return found

    def matrix(self, names: Sequence[str], rows: np.ndarray | None = None) -> np.ndarray:
        """Rows (all by default) with columns in `names` order, float32, contiguous."""
        cols = self.columns_for(names)
        block = self.values if rows is None else self.values[rows]
        return np.ascontiguousarray(block[:, cols])


def load_feature_snapshot(version_dir: Path, manifest: Mapping[str, Any]) -> FeatureSnapshot:
    """Registry loader for kind `feature_snapshot`."""
    with np.load(version_dir / SNAPSHOT_FILE, allow_pickle=False) as data:
        ids = data["customer_ids"].astype(str)
        values = data["values"]
        names = [str(n) for n in data["feature_names"]]
    history = version_dir / HISTORY_FILE
    return FeatureSnapshot(
        ids,
        values,
        names,
        str(manifest.get("as_of", "")),
        int(manifest["version"]),
        history=history if history.is_file() else None,
    )

"""Customer observations: features at each cutoff joined to what happened after it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm.features import LineArrays, compute_customer_features, feature_names
from training.btyd import CustomerBase, fit_customer_base
from training.labels import window_labels


@dataclass(frozen=True)
class Observations:
    """One row per (cutoff, customer with at least one purchase before the cutoff)."""

    cutoff: np.ndarray
    customer_ids: np.ndarray
    features: np.ndarray
    purchased: np.ndarray
    spend: np.ndarray
    spend_by_category: np.ndarray

    def __len__(self) -> int:
        return len(self.customer_ids)

    def take(self, index: np.ndarray) -> Observations:
        return Observations(
            self.cutoff[index],
            self.customer_ids[index],
            self.features[index],
            self.purchased[index],
            self.spend[index],
            self.spend_by_category[index],
        )


class FeatureStore:
    """Features per cutoff, computed once and shared by every model of a run."""

    def __init__(self, prepared: pd.DataFrame, categories: Sequence[str]) -> None:
        self.prepared = prepared
        self.lines = LineArrays(prepared)
        self.categories = list(categories)
        self.names = feature_names(self.categories)
        self._cache: dict[pd.Timestamp, tuple[np.ndarray, np.ndarray]] = {}
        self._frequency = self.names.index("frequency")
        self._bases: dict[pd.Timestamp, CustomerBase] = {}

    def at(self, cutoff: pd.Timestamp) -> tuple[np.ndarray, np.ndarray]:
        key = pd.Timestamp(cutoff)
        if key not in self._cache:
            self._cache[key] = compute_customer_features(self.lines, key, self.categories)
        return self._cache[key]

    def customer_base(self, cutoff: object) -> CustomerBase:
        """BG/NBD and Gamma-Gamma fitted on the buyers' history before `cutoff` (cached)."""
        key = pd.Timestamp(cutoff)
        if key not in self._bases:
            _, x = self.at(key)
            self._bases[key] = fit_customer_base(x[x[:, self._frequency] >= 1], self.names)
        return self._bases[key]

    def observations(self, cutoffs: Sequence[pd.Timestamp], horizon_days: int) -> Observations:
        parts = []
        for cutoff in cutoffs:
            ids, x = self.at(cutoff)
            buyers = x[:, self._frequency] >= 1
            ids, x = ids[buyers], x[buyers]
            labels = window_labels(self.lines, cutoff, horizon_days, ids, self.categories)
            stamp = np.full(len(ids), np.datetime64(pd.Timestamp(cutoff).to_datetime64(), "s"))
            parts.append(
                Observations(
                    stamp, ids, x, labels.purchased, labels.spend, labels.spend_by_category
                )
            )
        return Observations(
            *(
                np.concatenate([getattr(p, f) for p in parts])
                for f in Observations.__dataclass_fields__
            )
        )

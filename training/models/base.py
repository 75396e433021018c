"""What every model module hands to export: the graph, its native twin's outputs, its metrics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from training.parity import ParityResult, check_parity

SEED = 20240601


class BoosterParams(Protocol):
    """The size of a model's XGBoost ensemble and the threads that fit it."""

    threads: int
    n_estimators: int
    max_depth: int
    learning_rate: float


def booster_options(params: BoosterParams, **overrides: Any) -> dict[str, Any]:
    """XGBoost settings every model shares (row and column subsampling, hist trees, seeded)
    plus its own size from `params`; `overrides` (objective, regularisation) win."""
    options: dict[str, Any] = {
        "n_estimators": params.n_estimators,
        "max_depth": params.max_depth,
        "learning_rate": params.learning_rate,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "min_child_weight": 5.0,
        "tree_method": "hist",
        "n_jobs": params.threads,
        "random_state": SEED,
    }
    return {**options, **overrides}


@dataclass(frozen=True)
class SummaryRow:
    """One line of the end-of-run table: a metric of the model next to its baselines'.

    `baseline` is the naive baseline, `bgnbd` the probabilistic one (BG/NBD, x Gamma-Gamma for
    amounts) where it applies. With `target` set (a total ratio), closer to it is better.
    """

    metric: str
    model: float
    baseline: float | None
    higher_is_better: bool
    bgnbd: float | None = None
    target: float | None = None

    def _better(self, mine: float, other: float) -> bool:
        if self.target is not None:
            return abs(mine - self.target) < abs(other - self.target)
        return mine > other if self.higher_is_better else mine < other

    def loses_to(self, other: float) -> bool:
        """The other value is strictly better (a tie or an undefined metric is no loss)."""
        return bool(self._better(other, self.model))

    def beats_baseline(self) -> bool | None:
        if self.baseline is None:
            return None
        return self._better(self.model, self.baseline)

    def beats_bgnbd(self) -> bool | None:
        if self.bgnbd is None:
            return None
        return self._better(self.model, self.bgnbd)


@dataclass
class TrainedModel:
    name: str
    onnx_model: bytes
    features: list[str]
    outputs: list[dict[str, Any]]
    parity_rows: np.ndarray
    native_output: np.ndarray
    parity_output: str
    tolerance: float
    rtol: float
    metrics: dict[str, Any]
    training: dict[str, Any]
    serving: dict[str, Any]
    summary: list[SummaryRow] = field(default_factory=list)
    extra_files: dict[str, bytes] = field(default_factory=dict)

    def parity(self) -> ParityResult:
        return check_parity(
            self.onnx_model,
            self.parity_rows,
            self.native_output,
            self.parity_output,
            tolerance=self.tolerance,
            rtol=self.rtol,
        )


def output_spec(
    name: str, dtype: str, shape: list[int | str | None], meaning: str
) -> dict[str, Any]:
    return {"name": name, "dtype": dtype, "shape": shape, "meaning": meaning}


def held_out_rows(x: np.ndarray, limit: int, seed: int = SEED) -> np.ndarray:
    """A deterministic sample of validation rows for the parity gate."""
    if len(x) <= limit:
        return np.ascontiguousarray(x, dtype=np.float32)
    pick = np.sort(np.random.default_rng(seed).choice(len(x), size=limit, replace=False))
    return np.ascontiguousarray(x[pick], dtype=np.float32)


def subsample(n: int, limit: int, seed: int = SEED) -> np.ndarray:
    """Row indices: all when n <= limit, else a deterministic sorted sample of `limit`."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


CROSS_FIT_FOLDS = 3


def customer_folds(
    customer_ids: np.ndarray, k: int = CROSS_FIT_FOLDS, seed: int = SEED
) -> np.ndarray:
    """A fold 0..k-1 per row; every row of one customer (at any cutoff) in the same fold, so
    an out-of-fold prediction never comes from a model that saw that customer."""
    codes, uniques = pd.factorize(pd.Series(np.asarray(customer_ids, dtype=object)))
    return np.random.default_rng(seed).integers(0, k, len(uniques))[codes]


def cross_fit(
    fit_predict: Callable[[np.ndarray, np.ndarray], np.ndarray], folds: np.ndarray
) -> np.ndarray:
    """Out-of-fold predictions: fit_predict(train_index, test_index) per fold."""
    out = np.full(len(folds), np.nan)
    for fold in np.unique(folds):
        test = np.flatnonzero(folds == fold)
        train = np.flatnonzero(folds != fold)
        if not len(train):
            raise ValueError("cross-fitting needs at least two customer folds")
        out[test] = fit_predict(train, test)
    return out


class ModelSkipped(Exception):
    """The data cannot support this model; the message is the one line that says why."""

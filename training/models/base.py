"""What every model module hands to export: the graph, its native twin's outputs, its metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

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
    """One line of the end-of-run table: a metric of the model next to its baseline's."""

    metric: str
    model: float
    baseline: float | None
    higher_is_better: bool

    def beats_baseline(self) -> bool | None:
        if self.baseline is None:
            return None
        return self.model > self.baseline if self.higher_is_better else self.model < self.baseline


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

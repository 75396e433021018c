"""What every model module hands to export: the graph, its native twin's outputs, its metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from training.parity import ParityResult, check_parity

SEED = 20240601


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

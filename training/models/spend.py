"""Spend: gross sales in the next horizon_days, total and per category.

XGBoost with a Tweedie objective predicts the total (zero-inflated, right-skewed amounts; the
log link keeps it positive). The graph splits it by the customer's category shares, smoothed
toward the population mix by purchase count: w = frequency / (frequency + SMOOTHING), share =
w * own + (1 - w) * population, renormalised, so the categories always sum to the total.
Naive baseline: the customer's run rate, spend over the last 90 days scaled to the horizon,
split by the customer's raw shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from onnx import TensorProto
from onnxmltools import convert_xgboost
from onnxmltools.convert.common.data_types import FloatTensorType
from xgboost import XGBRegressor

from crm.features import CATEGORY_PREFIX
from training.labels import CutoffPlan
from training.metrics import regression
from training.models.base import (
    SummaryRow,
    TrainedModel,
    booster_options,
    held_out_rows,
    output_spec,
    subsample,
)
from training.observations import FeatureStore
from training.onnx_graph import INPUT_NAME, OPSET, GraphBuilder, wrap_model

SMOOTHING = 2.0
INNER = "inner_features"


@dataclass(frozen=True)
class SpendParams:
    horizon_days: int = 30
    max_fit_rows: int = 150_000
    threads: int = 2
    n_estimators: int = 400
    max_depth: int = 5
    learning_rate: float = 0.04
    tweedie_variance_power: float = 1.4


def split_by_category(
    total: np.ndarray, shares: np.ndarray, frequency: np.ndarray, prior: np.ndarray
) -> np.ndarray:
    """The numpy twin of the graph's category split: [N, C] amounts summing to total."""
    w = (frequency / (frequency + SMOOTHING))[:, None]
    mix = w * shares + (1.0 - w) * prior[None, :]
    mix = mix / mix.sum(axis=1, keepdims=True)
    return total[:, None] * mix


def _export(
    model: XGBRegressor, names: list[str], share_idx: list[int], prior: np.ndarray
) -> bytes:
    n = len(names)
    inner = convert_xgboost(
        model, initial_types=[(INNER, FloatTensorType([None, n]))], target_opset=OPSET
    )
    total = inner.graph.output[0].name
    pre, g = GraphBuilder("pre"), GraphBuilder("post")
    pre_out = pre.op("Identity", [INPUT_NAME])
    shares = g.columns(INPUT_NAME, share_idx)
    frequency = g.columns(INPUT_NAME, [names.index("frequency")])
    w = g.op("Div", [frequency, g.op("Add", [frequency, g.const(SMOOTHING)])])
    own = g.op("Mul", [w, shares])
    rest = g.op("Mul", [g.op("Sub", [g.const(1.0), w]), g.const(prior.astype(np.float32))])
    mix = g.op("Add", [own, rest])
    norm = g.op("ReduceSum", [mix, g.const([1], np.int64)], keepdims=1)
    amounts = g.op("Mul", [total, g.op("Div", [mix, norm])])
    g.op("Concat", [total, amounts], "spend", axis=1)
    return wrap_model(
        inner,
        inner_input=INNER,
        n_features=n,
        pre=pre,
        pre_output=pre_out,
        post=g,
        outputs=[("spend", TensorProto.FLOAT, [None, 1 + len(share_idx)])],
        doc="spend: predicted gross sales over the horizon, total then per category",
    )


def train_spend(store: FeatureStore, plan: CutoffPlan, params: SpendParams) -> TrainedModel:
    names = store.names
    categories = store.categories
    fit = store.observations([*plan.fit, plan.calibration], params.horizon_days)
    fit = fit.take(subsample(len(fit), params.max_fit_rows))
    val = store.observations([plan.validation], params.horizon_days)
    model = XGBRegressor(
        **booster_options(
            params,
            objective="reg:tweedie",
            tweedie_variance_power=params.tweedie_variance_power,
        )
    )
    model.fit(fit.features, fit.spend.astype(np.float32))

    share_idx = [names.index(CATEGORY_PREFIX + c) for c in categories]
    freq_idx = names.index("frequency")
    category_totals = fit.spend_by_category.sum(axis=0)
    prior = (
        category_totals / category_totals.sum()
        if category_totals.sum() > 0
        else np.full(len(categories), 1.0 / max(len(categories), 1))
    )
    prior = np.maximum(prior, 1e-6)
    prior = prior / prior.sum()

    def native(x: np.ndarray) -> np.ndarray:
        total = model.predict(x).astype(np.float64)
        split = split_by_category(total, x[:, share_idx].astype(np.float64), x[:, freq_idx], prior)
        return np.column_stack([total, split])

    pred = native(val.features)
    scale = params.horizon_days / 90.0
    base_total = val.features[:, names.index("spend_90d")].astype(np.float64) * scale
    base_split = base_total[:, None] * val.features[:, share_idx].astype(np.float64)
    validation = regression(val.spend, pred[:, 0])
    baseline = regression(val.spend, base_total)
    per_category = {
        c: {
            "model_mae": float(np.abs(pred[:, 1 + i] - val.spend_by_category[:, i]).mean()),
            "baseline_mae": float(np.abs(base_split[:, i] - val.spend_by_category[:, i]).mean()),
            "actual_total": float(val.spend_by_category[:, i].sum()),
            "predicted_total": float(pred[:, 1 + i].sum()),
        }
        for i, c in enumerate(categories)
    }
    rows = held_out_rows(val.features, 5000)
    return TrainedModel(
        name="spend",
        onnx_model=_export(model, names, share_idx, prior),
        features=list(names),
        outputs=[
            output_spec(
                "spend",
                "float32",
                [None, 1 + len(categories)],
                f"column 0: predicted gross sales over the next {params.horizon_days} days; "
                "columns 1..C: the same split by serving.categories, summing to column 0",
            )
        ],
        parity_rows=rows,
        native_output=native(rows),
        parity_output="spend",
        tolerance=1e-3,
        rtol=1e-5,
        metrics={
            "split": "time-based: fit and calibration cutoffs < validation cutoff",
            "validation": {**validation, "per_category": per_category},
            "baseline": {
                **baseline,
                "name": "run rate: spend_90d x horizon / 90, split by the customer's own shares",
            },
        },
        training={
            "cutoffs": plan.as_manifest(),
            "rows": {"fit": len(fit), "validation": len(val)},
            "label": (
                f"gross sales (returns excluded) in [cutoff, cutoff + {params.horizon_days} days)"
            ),
            "population": "customers with at least one sale invoice before the cutoff",
            "parameters": {
                "objective": "reg:tweedie",
                "tweedie_variance_power": params.tweedie_variance_power,
                "n_estimators": params.n_estimators,
                "max_depth": params.max_depth,
                "learning_rate": params.learning_rate,
                "category_smoothing": SMOOTHING,
            },
        },
        serving={
            "horizon_days": params.horizon_days,
            "categories": list(categories),
            "category_prior": dict(zip(categories, prior.round(6).tolist(), strict=True)),
            "category_smoothing": SMOOTHING,
            "importances": _importances(model, names),
        },
        summary=[
            SummaryRow("mae", validation["mae"], baseline["mae"], False),
            SummaryRow("rmse", validation["rmse"], baseline["rmse"], False),
            SummaryRow("spearman", validation["spearman"], baseline["spearman"], True),
        ],
    )


def _importances(model: Any, names: list[str]) -> dict[str, float]:
    gain = np.asarray(model.feature_importances_, dtype=np.float64)
    gain = gain / gain.sum() if gain.sum() > 0 else gain
    return dict(zip(names, gain.round(6).tolist(), strict=True))

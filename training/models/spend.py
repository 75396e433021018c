"""Spend: gross sales in the next horizon_days, total and per category.

XGBoost with a Poisson-deviance objective predicts the total (zero-inflated, right-skewed
amounts; the log link keeps it positive, and the deviance's balance property keeps the sum of
predictions at the sum of actuals, which a Tweedie power > 1 does not), times a total scale
that makes its cross-fitted predictions sum to the actual total. The graph splits it by the customer's category shares, smoothed
toward the population mix by purchase count: w = frequency / (frequency + SMOOTHING), share =
w * own + (1 - w) * population, renormalised, so the categories always sum to the total.
Naive baseline: the customer's run rate, spend over the last 90 days scaled to the horizon,
split by the customer's raw shares.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from onnx import TensorProto
from onnxmltools import convert_xgboost
from onnxmltools.convert.common.data_types import FloatTensorType
from xgboost import XGBRegressor

from crm.features import CATEGORY_SHARE_PREFIX
from training.btyd import predict_spend
from training.labels import CutoffPlan
from training.metrics import deciles, regression
from training.models.base import (
    CROSS_FIT_FOLDS,
    ModelSkipped,
    SummaryRow,
    TrainedModel,
    booster_options,
    cross_fit,
    customer_folds,
    held_out_rows,
    output_spec,
    subsample,
)
from training.observations import FeatureStore
from training.onnx_graph import INNER_INPUT, INPUT_NAME, OPSET, GraphBuilder, wrap_model

SMOOTHING = 2.0


@dataclass(frozen=True)
class SpendParams:
    horizon_days: int = 30
    max_fit_rows: int = 150_000
    threads: int = 2
    n_estimators: int = 200
    max_depth: int = 3
    learning_rate: float = 0.04
    # Poisson deviance on amounts: its log link keeps the total positive and, unlike Tweedie
    # powers > 1, its optimum matches the sum of predictions to the sum of labels (the
    # balance property), so predicted totals are not biased low on zero-heavy windows.
    objective: str = "count:poisson"


def split_by_category(
    total: np.ndarray, shares: np.ndarray, frequency: np.ndarray, prior: np.ndarray
) -> np.ndarray:
    """The numpy twin of the graph's category split: [N, C] amounts summing to total."""
    w = (frequency / (frequency + SMOOTHING))[:, None]
    mix = w * shares + (1.0 - w) * prior[None, :]
    mix = mix / mix.sum(axis=1, keepdims=True)
    return total[:, None] * mix


def _export(
    model: XGBRegressor, names: list[str], share_idx: list[int], prior: np.ndarray, scale: float
) -> bytes:
    n = len(names)
    inner = convert_xgboost(
        model, initial_types=[(INNER_INPUT, FloatTensorType([None, n]))], target_opset=OPSET
    )
    pre, g = GraphBuilder("pre"), GraphBuilder("post")
    total = g.op("Mul", [inner.graph.output[0].name, g.const(np.float32(scale))])
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
        inner_input=INNER_INPUT,
        n_features=n,
        pre=pre,
        pre_output=pre_out,
        post=g,
        outputs=[("spend", TensorProto.FLOAT, [None, 1 + len(share_idx)])],
        doc="spend: predicted gross sales over the horizon, total then per category",
    )


def _fit_total(x: np.ndarray, y: np.ndarray, params: SpendParams) -> XGBRegressor:
    model = XGBRegressor(**booster_options(params, objective=params.objective))
    return model.fit(x, y.astype(np.float32))


def _fit_scaled(
    x: np.ndarray, y: np.ndarray, customer_ids: np.ndarray, params: SpendParams
) -> tuple[XGBRegressor, float]:
    """The total model on every row, and the factor that makes its cross-fitted (out-of-fold
    by customer) predictions sum to the actual total: sum(y) / sum(out-of-fold)."""

    def fit_predict(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        return _fit_total(x[train], y[train], params).predict(x[test]).astype(np.float64)

    oof = cross_fit(fit_predict, customer_folds(customer_ids))
    scale = float(y.sum() / oof.sum()) if oof.sum() > 0 and y.sum() > 0 else 1.0
    return _fit_total(x, y, params), float(np.clip(scale, 0.2, 5.0))


def train_spend(store: FeatureStore, plan: CutoffPlan, params: SpendParams) -> TrainedModel:
    names = store.names
    categories = store.categories
    fit = store.observations(plan.fit, params.horizon_days)
    fit = fit.take(subsample(len(fit), params.max_fit_rows))
    val = store.observations([plan.validation], params.horizon_days)
    refit = store.observations(plan.refit, params.horizon_days)
    refit = refit.take(subsample(len(refit), params.max_fit_rows))
    for role, obs in (("fit", fit), ("validation", val), ("refit", refit)):
        if not len(obs) or obs.spend.sum() <= 0:
            raise ModelSkipped(
                f"spend: no sales in the {role} windows ({len(obs)} customer rows), so there "
                "is nothing to learn or measure"
            )
    share_idx = [names.index(CATEGORY_SHARE_PREFIX + c) for c in categories]
    freq_idx = names.index("frequency")
    category_totals = refit.spend_by_category.sum(axis=0)
    prior = (
        category_totals / category_totals.sum()
        if category_totals.sum() > 0
        else np.full(len(categories), 1.0 / max(len(categories), 1))
    )
    prior = np.maximum(prior, 1e-6)
    prior = prior / prior.sum()

    def native_of(model: XGBRegressor, scale: float) -> Callable[[np.ndarray], np.ndarray]:
        def native(x: np.ndarray) -> np.ndarray:
            total = model.predict(x).astype(np.float64) * scale
            split = split_by_category(
                total, x[:, share_idx].astype(np.float64), x[:, freq_idx], prior
            )
            return np.column_stack([total, split])

        return native

    validated, val_scale = _fit_scaled(fit.features, fit.spend, fit.customer_ids, params)
    pred = native_of(validated, val_scale)(val.features)
    # the validated configuration, refitted on cutoffs up to the validation one
    model, scale = _fit_scaled(refit.features, refit.spend, refit.customer_ids, params)
    native = native_of(model, scale)

    horizon_scale = params.horizon_days / 90.0
    base_total = val.features[:, names.index("spend_90d")].astype(np.float64) * horizon_scale
    base_split = base_total[:, None] * val.features[:, share_idx].astype(np.float64)
    customer_base = store.customer_base(plan.validation)
    bgnbd_total = predict_spend(customer_base, val.features, names, params.horizon_days)
    validation = regression(val.spend, pred[:, 0])
    baseline = regression(val.spend, base_total)
    bgnbd = regression(val.spend, bgnbd_total)
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
        onnx_model=_export(model, names, share_idx, prior, scale),
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
            "split": (
                "time-based: validated on the latest fully observed window (fit windows end at "
                "or before it); the exported model is the same configuration refitted on "
                "cutoffs up to the validation one"
            ),
            "validation": {
                **validation,
                "total_scale": val_scale,
                "per_category": per_category,
                "deciles": deciles(val.spend, pred[:, 0]),
            },
            "baseline": {
                **baseline,
                "name": "run rate: spend_90d x horizon / 90, split by the customer's own shares",
                "deciles": deciles(val.spend, base_total),
            },
            "bgnbd": {
                **bgnbd,
                "name": "BG/NBD expected purchases x Gamma-Gamma spend per purchase, fitted on "
                "the validation cutoff's history",
                "parameters": customer_base.as_manifest(),
                "deciles": deciles(val.spend, bgnbd_total),
            },
        },
        training={
            "cutoffs": plan.as_manifest(),
            "rows": {"fit": len(fit), "validation": len(val), "refit": len(refit)},
            "label": (
                f"gross sales (returns excluded) in [cutoff, cutoff + {params.horizon_days} days)"
            ),
            "population": "customers with at least one sale invoice before the cutoff",
            "parameters": {
                "objective": params.objective,
                "n_estimators": params.n_estimators,
                "max_depth": params.max_depth,
                "learning_rate": params.learning_rate,
                "category_smoothing": SMOOTHING,
                "total_scale": scale,
                "total_scale_method": (
                    f"sum(actual) / sum(out-of-fold prediction), {CROSS_FIT_FOLDS} customer "
                    "folds of the refit rows"
                ),
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
            SummaryRow(
                "spearman", validation["spearman"], baseline["spearman"], True, bgnbd["spearman"]
            ),
            SummaryRow("rmse", validation["rmse"], baseline["rmse"], False, bgnbd["rmse"]),
            SummaryRow("mae", validation["mae"], baseline["mae"], False, bgnbd["mae"]),
            SummaryRow(
                "total_ratio",
                validation["total_ratio"],
                baseline["total_ratio"],
                True,
                bgnbd["total_ratio"],
                target=1.0,
            ),
        ],
    )


def _importances(model: Any, names: list[str]) -> dict[str, float]:
    gain = np.asarray(model.feature_importances_, dtype=np.float64)
    gain = gain / gain.sum() if gain.sum() > 0 else gain
    return dict(zip(names, gain.round(6).tolist(), strict=True))

"""Revenue: expected net revenue of an invoice line after returns.

XGBoost predicts the fraction of the line's units that will come back (squared error on the
observed fraction, so the prediction estimates its mean); the graph clips it to 0..1 and
outputs gross x (1 - fraction). A sale line's observed fraction is the units of later returns
matched to it, over its units: each return line is matched to the same customer's most recent
earlier sale of the same StockCode within RETURN_WINDOW_DAYS. Naive baseline: gross x (1 - the
fit period's value-weighted return rate).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from onnx import TensorProto
from onnxmltools import convert_xgboost
from onnxmltools.convert.common.data_types import FloatTensorType
from sklearn.metrics import roc_auc_score
from xgboost import XGBRegressor

from crm.features import SECONDS_PER_DAY, timestamp_seconds
from crm.line_features import GROSS, line_feature_names, line_features_from_prepared
from training.metrics import regression
from training.models.base import (
    ModelSkipped,
    SummaryRow,
    TrainedModel,
    booster_options,
    held_out_rows,
    output_spec,
    subsample,
)
from training.onnx_graph import INNER_INPUT, INPUT_NAME, OPSET, GraphBuilder, wrap_model

RETURN_WINDOW_DAYS = 30


@dataclass(frozen=True)
class RevenueParams:
    validation_days: int = 60
    max_fit_rows: int = 150_000
    threads: int = 2
    n_estimators: int = 200
    max_depth: int = 3
    learning_rate: float = 0.05


def returned_fraction(prepared: pd.DataFrame) -> pd.Series:
    """For every sale line (index of `prepared`): the share of its units returned later.

    Customers and products are matched by their integer codes (`_c`, `_p`), so data without
    any return (an empty frame) merges like any other.
    """
    ret = prepared["_ret"].to_numpy()
    if not ret.any():
        return pd.Series(0.0, index=np.flatnonzero(~ret))
    sales = pd.DataFrame(
        {
            "t": prepared["_t"].to_numpy()[~ret],
            "c": prepared["_c"].to_numpy(dtype=np.int64)[~ret],
            "s": prepared["_p"].to_numpy(dtype=np.int64)[~ret],
            "sale": np.flatnonzero(~ret),
        }
    ).sort_values("t", kind="mergesort")
    returns = pd.DataFrame(
        {
            "t": prepared["_t"].to_numpy()[ret],
            "c": prepared["_c"].to_numpy(dtype=np.int64)[ret],
            "s": prepared["_p"].to_numpy(dtype=np.int64)[ret],
            "units": -prepared["_qty"].to_numpy()[ret],
        }
    ).sort_values("t", kind="mergesort")
    matched = pd.merge_asof(
        returns,
        sales,
        on="t",
        by=["c", "s"],
        direction="backward",
        allow_exact_matches=False,
        tolerance=RETURN_WINDOW_DAYS * SECONDS_PER_DAY,
    ).dropna(subset=["sale"])
    returned = matched.groupby(matched["sale"].astype(np.int64))["units"].sum()
    sold = prepared["_qty"].to_numpy()[~ret]
    fraction = pd.Series(0.0, index=np.flatnonzero(~ret))
    fraction.loc[returned.index] = returned.to_numpy()
    return (fraction / sold).clip(0.0, 1.0)


def _returned_value_metrics(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """Errors on the returned value itself, and how well predictions rank lines with a return
    (ROC-AUC; 0.5 for a constant rate, which cannot rank)."""
    error = predicted - actual
    returned = actual > 0
    auc = (
        float(roc_auc_score(returned, predicted))
        if 0 < returned.sum() < len(returned)
        else float("nan")
    )
    return {
        "returned_value_mae": round(float(np.abs(error).mean()), 6),
        "returned_value_rmse": round(float(np.sqrt((error**2).mean())), 6),
        "return_auc": round(auc, 6),
    }


def _export(model: XGBRegressor, names: list[str]) -> bytes:
    inner = convert_xgboost(
        model,
        initial_types=[(INNER_INPUT, FloatTensorType([None, len(names)]))],
        target_opset=OPSET,
    )
    pre, post = GraphBuilder("pre"), GraphBuilder("post")
    pre_out = pre.op("Identity", [INPUT_NAME])
    fraction = post.clip(post.flatten(inner.graph.output[0].name), 0.0, 1.0)
    kept = post.op("Sub", [post.const(1.0), fraction])
    post.op("Mul", [post.column(INPUT_NAME, names.index(GROSS)), kept], "revenue")
    return wrap_model(
        inner,
        inner_input=INNER_INPUT,
        n_features=len(names),
        pre=pre,
        pre_output=pre_out,
        post=post,
        outputs=[("revenue", TensorProto.FLOAT, [None])],
        doc="revenue: expected net revenue of an invoice line after returns",
    )


def train_revenue(
    prepared: pd.DataFrame, categories: list[str], as_of: pd.Timestamp, params: RevenueParams
) -> TrainedModel:
    names = line_feature_names(categories)
    fraction = returned_fraction(prepared)
    end = timestamp_seconds(as_of)
    window = RETURN_WINDOW_DAYS * SECONDS_PER_DAY
    val_start = end - window - params.validation_days * SECONDS_PER_DAY
    t = prepared["_t"].to_numpy()[fraction.index]
    val_idx = fraction.index[(t >= val_start) & (t < end - window)]
    fit_idx = fraction.index[t < val_start - window]
    if not len(fit_idx) or not len(val_idx):
        raise ModelSkipped(
            f"revenue: needs sale lines both before and after {RETURN_WINDOW_DAYS * 2 + params.validation_days} "
            "days before the data's end (fit, validation and two return windows)"
        )
    x_fit = line_features_from_prepared(prepared.loc[fit_idx], categories)
    y_fit = fraction.loc[fit_idx].to_numpy()
    keep = subsample(len(x_fit), params.max_fit_rows)
    x_fit, y_fit = x_fit[keep], y_fit[keep]
    x_val = line_features_from_prepared(prepared.loc[val_idx], categories)
    y_val = fraction.loc[val_idx].to_numpy()
    model = XGBRegressor(
        **booster_options(params, objective="reg:squarederror", min_child_weight=50.0)
    )
    model.fit(x_fit, y_fit.astype(np.float32))
    g = names.index(GROSS)

    def native(x: np.ndarray) -> np.ndarray:
        f = np.clip(model.predict(x).astype(np.float64), 0.0, 1.0)
        return x[:, g].astype(np.float64) * (1.0 - f)

    gross_fit = x_fit[:, g].astype(np.float64)
    rate = float((gross_fit * y_fit).sum() / gross_fit.sum())
    gross_val = x_val[:, g].astype(np.float64)
    actual = gross_val * (1.0 - y_val)
    pred = native(x_val)
    base = gross_val * (1.0 - rate)
    validation = regression(actual, pred)
    baseline = regression(actual, base)
    for metrics, predicted in ((validation, pred), (baseline, base)):
        metrics.update(_returned_value_metrics(gross_val - predicted, gross_val - actual))
    rows = held_out_rows(x_val, 5000)
    gain = np.asarray(model.feature_importances_, dtype=np.float64)
    gain = gain / gain.sum() if gain.sum() > 0 else gain
    return TrainedModel(
        name="revenue",
        onnx_model=_export(model, names),
        features=names,
        outputs=[
            output_spec(
                "revenue", "float32", [None], "expected net revenue of the line after returns"
            )
        ],
        parity_rows=rows,
        native_output=native(rows),
        parity_output="revenue",
        tolerance=1e-3,
        rtol=1e-5,
        metrics={
            "split": (
                "time-based: fit lines end a return window before the validation lines begin; "
                "validation lines end a return window before the data does"
            ),
            "validation": validation,
            "baseline": {**baseline, "name": "gross x (1 - fit-period return rate)", "rate": rate},
        },
        training={
            "rows": {"fit": len(x_fit), "validation": len(x_val)},
            "label": (
                "gross x (1 - returned fraction); returns matched to the customer's latest "
                f"earlier sale of the product within {RETURN_WINDOW_DAYS} days"
            ),
            "parameters": {
                "objective": "reg:squarederror on the returned fraction",
                "n_estimators": params.n_estimators,
                "max_depth": params.max_depth,
                "learning_rate": params.learning_rate,
            },
        },
        serving={
            "categories": list(categories),
            "row_builder": "crm.line_features.line_feature_matrix",
            "fit_return_rate": rate,
            "importances": dict(zip(names, gain.round(6).tolist(), strict=True)),
        },
        summary=[
            SummaryRow(m, validation[m], baseline[m], m == "return_auc")
            for m in ("returned_value_rmse", "returned_value_mae", "return_auc")
        ],
    )

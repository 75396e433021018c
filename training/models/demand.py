"""Demand: units per product per day for the next 7 days, XGBoost (Poisson) on lag and
calendar rows from `crm.demand`, against the seasonal-naive forecast (same weekday last week).

Weekly origins step back from the data's end: the latest `validation_weeks` are validation, the
`fit_weeks` before them fit. A fit origin's 7 target days all precede the first validation
origin, so no fit label falls in a validation week.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import TensorProto
from onnxmltools import convert_xgboost
from onnxmltools.convert.common.data_types import FloatTensorType
from xgboost import XGBRegressor

from crm.demand import HISTORY_DAYS, MAX_HORIZON_DAYS, demand_feature_names, demand_rows
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
from training.products import ProductPanel

MIN_HISTORY_DAYS = 28


@dataclass(frozen=True)
class DemandParams:
    fit_weeks: int = 30
    validation_weeks: int = 2
    max_fit_rows: int = 150_000
    threads: int = 2
    n_estimators: int = 300
    max_depth: int = 6
    learning_rate: float = 0.05


def origin_rows(
    panel: ProductPanel, origin: int, categories: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Rows and targets [P' * 7] for the products that had sold before day index `origin`."""
    products = np.flatnonzero(panel.first_sale < origin)
    history = panel.units[products, max(0, origin - HISTORY_DAYS) : origin]
    cat = panel.catalogue["category"].to_numpy()[products]
    price = panel.catalogue["unit_price"].to_numpy()[products]
    rows = demand_rows(history, panel.day(origin), price, list(cat), categories)
    target = panel.units[products, origin : origin + MAX_HORIZON_DAYS].reshape(-1)
    return rows, target


def _stack(
    panel: ProductPanel, origins: list[int], categories: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    parts = [origin_rows(panel, o, categories) for o in origins]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _export(model: XGBRegressor, n_features: int) -> bytes:
    inner = convert_xgboost(
        model,
        initial_types=[(INNER_INPUT, FloatTensorType([None, n_features]))],
        target_opset=OPSET,
    )
    pre, post = GraphBuilder("pre"), GraphBuilder("post")
    pre_out = pre.op("Identity", [INPUT_NAME])
    post.flatten(inner.graph.output[0].name, "units")
    return wrap_model(
        inner,
        inner_input=INNER_INPUT,
        n_features=n_features,
        pre=pre,
        pre_output=pre_out,
        post=post,
        outputs=[("units", TensorProto.FLOAT, [None])],
        doc="demand: expected units sold of one product on one day",
    )


def train_demand(panel: ProductPanel, categories: list[str], params: DemandParams) -> TrainedModel:
    names = demand_feature_names(categories)
    last = panel.days - MAX_HORIZON_DAYS
    val_origins = [last - 7 * k for k in range(params.validation_weeks)]
    first_val = min(val_origins)
    fit_origins = [
        o
        for o in (first_val - 7 * k for k in range(1, params.fit_weeks + 1))
        if o >= MIN_HISTORY_DAYS
    ]
    if not fit_origins:
        raise ModelSkipped("demand: too few days of data for a fit week before validation")
    x_fit, y_fit = _stack(panel, fit_origins, categories)
    keep = subsample(len(x_fit), params.max_fit_rows)
    x_fit, y_fit = x_fit[keep], y_fit[keep]
    x_val, y_val = _stack(panel, val_origins, categories)
    model = XGBRegressor(**booster_options(params, objective="count:poisson"))
    model.fit(x_fit, y_fit.astype(np.float32))
    pred = model.predict(x_val).astype(np.float64)
    naive = x_val[:, names.index("lag_same_weekday_1w")].astype(np.float64)
    validation = regression(y_val, pred)
    baseline = regression(y_val, naive)
    rows = held_out_rows(x_val, 5000)
    gain = np.asarray(model.feature_importances_, dtype=np.float64)
    gain = gain / gain.sum() if gain.sum() > 0 else gain
    return TrainedModel(
        name="demand",
        onnx_model=_export(model, len(names)),
        features=names,
        outputs=[output_spec("units", "float32", [None], "expected units sold on the row's day")],
        parity_rows=rows,
        native_output=model.predict(rows).astype(np.float64),
        parity_output="units",
        tolerance=1e-4,
        rtol=1e-5,
        metrics={
            "split": "time-based: weekly origins; fit weeks end before the first validation origin",
            "validation": validation,
            "baseline": {**baseline, "name": "seasonal naive: same weekday last week"},
        },
        training={
            "origins": {
                "fit": [str(panel.day(o)) for o in sorted(fit_origins)],
                "validation": [str(panel.day(o)) for o in sorted(val_origins)],
            },
            "rows": {"fit": len(x_fit), "validation": len(x_val)},
            "label": "units sold (returns excluded) of the product on the target day",
            "parameters": {
                "objective": "count:poisson",
                "n_estimators": params.n_estimators,
                "max_depth": params.max_depth,
                "learning_rate": params.learning_rate,
                "history_days": HISTORY_DAYS,
                "horizon_days": MAX_HORIZON_DAYS,
            },
        },
        serving={
            "horizon_days": MAX_HORIZON_DAYS,
            "history_days": HISTORY_DAYS,
            "categories": list(categories),
            "row_builder": "crm.demand.demand_rows",
            "product_snapshot": "products",
            "importances": dict(zip(names, gain.round(6).tolist(), strict=True)),
        },
        summary=[
            SummaryRow("wape", validation["wape"], baseline["wape"], False),
            SummaryRow("mae", validation["mae"], baseline["mae"], False),
        ],
    )

"""Churn: P(no purchase in the next churn_days), LogisticRegression vs XGBoost, calibrated.

Both candidates fit on the fit cutoffs (windows ending at or before the validation cutoff);
the one with the higher validation PR-AUC is calibrated and validated. Calibration is Platt
scaling stacked with what the BG/NBD baseline knows: a logistic regression of the label on
logit(the candidate's cross-fitted, out-of-fold-by-customer probability) and logit(BG/NBD's
P(no purchase in the window)), each row's BG/NBD fitted on its own cutoff's history. The same
configuration is refitted, calibration cross-fitted again, on cutoffs up to the validation
one and exported; its graph computes BG/NBD's probability from the raw frequency, purchase
span and tenure with the parameters fitted on the whole history (numpy/ONNX arithmetic only:
the server needs no scipy). Baselines on the same validation rows: the fit-period churn rate
of the customer's recency decile (naive) and BG/NBD fitted on the validation cutoff's history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from onnx import TensorProto
from onnxmltools import convert_xgboost
from onnxmltools.convert.common.data_types import FloatTensorType as XgbFloat
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType as SklFloat
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from xgboost import XGBClassifier

from crm.artifacts import DEFAULT_RISK_THRESHOLDS
from training.btyd import BetaGeo, churn_by_cutoff, predict_churn
from training.labels import CutoffPlan
from training.metrics import classification, reliability
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
from training.onnx_graph import (
    INNER_INPUT,
    INPUT_NAME,
    ML_OPSET,
    OPSET,
    GraphBuilder,
    fold_platt_into_trees,
    signed_log,
    wrap_model,
)

EPS = 1e-6
RISK_THRESHOLDS = DEFAULT_RISK_THRESHOLDS


@dataclass(frozen=True)
class ChurnParams:
    churn_days: int = 90
    max_fit_rows: int = 150_000
    threads: int = 2
    n_estimators: int = 300
    max_depth: int = 5
    learning_rate: float = 0.05


@dataclass(frozen=True)
class Platt:
    """sigmoid(slope * logit(p) + bgnbd_slope * logit(p_bgnbd) + intercept): Platt scaling,
    stacked with BG/NBD's P(no purchase) when given (what the baseline knows, as a feature)."""

    slope: float
    intercept: float
    bgnbd_slope: float = 0.0

    @staticmethod
    def fit(p: np.ndarray, y: np.ndarray, p_bgnbd: np.ndarray | None = None) -> Platt:
        columns = [_logit(p)] if p_bgnbd is None else [_logit(p), _logit(p_bgnbd)]
        model = LogisticRegression(C=1e6, max_iter=1000).fit(np.column_stack(columns), y)
        coef = model.coef_[0]
        return Platt(
            float(coef[0]), float(model.intercept_[0]), float(coef[1]) if len(coef) > 1 else 0.0
        )

    def apply(self, p: np.ndarray, p_bgnbd: np.ndarray | None = None) -> np.ndarray:
        z = self.slope * _logit(p) + self.intercept
        if self.bgnbd_slope:
            if p_bgnbd is None:
                raise ValueError("this calibration stacks BG/NBD: p_bgnbd is required")
            z = z + self.bgnbd_slope * _logit(p_bgnbd)
        return 1.0 / (1.0 + np.exp(-z))


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0 - EPS)
    return np.log(q) - np.log(1.0 - q)


def _recency_baseline(
    recency_fit: np.ndarray, y_fit: np.ndarray, recency_val: np.ndarray
) -> tuple[np.ndarray, list[float]]:
    edges = np.unique(np.percentile(recency_fit, np.arange(10, 100, 10)))
    fit_bin = np.searchsorted(edges, recency_fit, side="right")
    rate = np.bincount(fit_bin, weights=y_fit, minlength=len(edges) + 1) / np.maximum(
        np.bincount(fit_bin, minlength=len(edges) + 1), 1
    )
    return rate[np.searchsorted(edges, recency_val, side="right")], [float(e) for e in edges]


def _lr_candidate(x: np.ndarray, y: np.ndarray) -> Pipeline:
    model = Pipeline(
        [("scale", StandardScaler()), ("lr", LogisticRegression(C=1.0, max_iter=3000))]
    )
    return model.fit(signed_log(x.astype(np.float64)), y)


def _xgb_candidate(x: np.ndarray, y: np.ndarray, params: ChurnParams) -> XGBClassifier:
    model = XGBClassifier(**booster_options(params, reg_lambda=1.0, eval_metric="aucpr"))
    return model.fit(x, y)


def _raw_probability(kind: str, model: Any, x: np.ndarray) -> np.ndarray:
    if kind == "logistic_regression":
        return model.predict_proba(signed_log(x.astype(np.float64)))[:, 1]
    return model.predict_proba(x)[:, 1].astype(np.float64)


def _export(
    kind: str, model: Any, names: list[str], platt: Platt, bgnbd: tuple[BetaGeo, float]
) -> bytes:
    """The candidate, its calibration and (when stacked) BG/NBD's P(no purchase) computed in
    the graph from the raw frequency, purchase span and tenure with fixed parameters."""
    n_features = len(names)
    pre, post = GraphBuilder("pre"), GraphBuilder("post")

    def bgnbd_term() -> str:
        fitted, days = bgnbd
        columns = [names.index(n) for n in ("frequency", "purchase_span_days", "tenure_days")]
        params = (fitted.r, fitted.alpha, fitted.a, fitted.b)
        p_bgnbd = post.bgnbd_no_purchase(INPUT_NAME, columns, params, days)
        return post.op("Mul", [post.logit(p_bgnbd, EPS), post.const(platt.bgnbd_slope)])

    if kind == "logistic_regression":
        inner = convert_sklearn(
            model,
            initial_types=[(INNER_INPUT, SklFloat([None, n_features]))],
            options={id(model.steps[-1][1]): {"zipmap": False}},
            target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET},
        )
        pre_out = pre.signed_log(INPUT_NAME)
        probabilities = next(o.name for o in inner.graph.output if "prob" in o.name)
        positive = post.column(probabilities, 1)
        if platt.bgnbd_slope:
            own = post.op("Mul", [post.logit(positive, EPS), post.const(platt.slope)])
            stacked = post.op("Add", [own, bgnbd_term()])
            scaled = post.op("Add", [stacked, post.const(platt.intercept)])
            post.op("Sigmoid", [scaled], "probability")
        else:
            post.op(
                "Identity",
                [post.platt(positive, platt.slope, platt.intercept, EPS)],
                "probability",
            )
    else:
        converted = convert_xgboost(
            model, initial_types=[(INNER_INPUT, XgbFloat([None, n_features]))], target_opset=OPSET
        )
        stacked = bool(platt.bgnbd_slope)
        inner = fold_platt_into_trees(
            converted, platt.slope, platt.intercept, "calibrated", sigmoid=not stacked
        )
        pre_out = pre.op("Identity", [INPUT_NAME])
        if stacked:
            margin = post.op("Add", [post.flatten("calibrated"), bgnbd_term()])
            post.op("Sigmoid", [margin], "probability")
        else:
            post.flatten("calibrated", "probability")
    return wrap_model(
        inner,
        inner_input=INNER_INPUT,
        n_features=n_features,
        pre=pre,
        pre_output=pre_out,
        post=post,
        outputs=[("probability", TensorProto.FLOAT, [None])],
        doc=f"churn: calibrated {kind} probability of no purchase in the horizon",
    )


def _fit_calibrated(
    kind: str,
    x: np.ndarray,
    y: np.ndarray,
    customer_ids: np.ndarray,
    params: ChurnParams,
    *,
    p_bgnbd: np.ndarray | None = None,
    fitted: Any = None,
) -> tuple[Any, Platt]:
    """The candidate fitted on every row, with a Platt scaling fitted on its cross-fitted
    (out-of-fold by customer) probabilities: no rows are held back for calibration."""

    def fit(rows: np.ndarray) -> Any:
        if kind == "logistic_regression":
            return _lr_candidate(x[rows], y[rows])
        return _xgb_candidate(x[rows], y[rows], params)

    def fit_predict(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        if len(np.unique(y[train])) < 2:
            return np.full(len(test), float(y[train].mean()))
        return _raw_probability(kind, fit(train), x[test])

    oof = cross_fit(fit_predict, customer_folds(customer_ids))
    platt = Platt.fit(oof, y, p_bgnbd)
    return fitted if fitted is not None else fit(np.arange(len(y))), platt


def train_churn(store: FeatureStore, plan: CutoffPlan, params: ChurnParams) -> TrainedModel:
    names = store.names
    fit = store.observations(plan.fit, params.churn_days)
    fit = fit.take(subsample(len(fit), params.max_fit_rows))
    val = store.observations([plan.validation], params.churn_days)
    refit = store.observations(plan.refit, params.churn_days)
    refit = refit.take(subsample(len(refit), params.max_fit_rows))
    y_fit, y_val, y_refit = (~o.purchased for o in (fit, val, refit))
    for role, y in (("fit", y_fit), ("validation", y_val), ("refit", y_refit)):
        if len(np.unique(y)) < 2:
            raise ModelSkipped(
                f"churn: the {role} windows hold only {'churned' if y.all() else 'retained'} "
                f"customers ({len(y)} rows), so there is nothing to learn or measure"
            )

    # Platt scaling is monotone, so the candidates rank (PR-AUC, ROC-AUC) the same before it:
    # choose on raw probabilities, then calibrate only the chosen one
    candidates: dict[str, Any] = {
        "logistic_regression": _lr_candidate(fit.features, y_fit),
        "xgboost": _xgb_candidate(fit.features, y_fit, params),
    }
    scores = {
        kind: classification(y_val, _raw_probability(kind, model, val.features))
        for kind, model in candidates.items()
    }
    chosen = max(scores, key=lambda k: (scores[k]["pr_auc"], k == "logistic_regression"))
    days = params.churn_days
    bgnbd_at = store.customer_base
    p_bg_fit = churn_by_cutoff(fit.cutoff, fit.features, names, days, bgnbd_at)
    validated, val_platt = _fit_calibrated(
        chosen,
        fit.features,
        y_fit,
        fit.customer_ids,
        params,
        p_bgnbd=p_bg_fit,
        fitted=candidates[chosen],
    )
    customer_base = bgnbd_at(plan.validation)
    bgnbd_p = predict_churn(customer_base, val.features, names, days)
    p_val = val_platt.apply(_raw_probability(chosen, validated, val.features), bgnbd_p)
    # the validated configuration, refitted on cutoffs up to the validation one; at serving
    # BG/NBD is the one fitted on the whole history (the snapshot's as-of)
    p_bg_refit = churn_by_cutoff(refit.cutoff, refit.features, names, days, bgnbd_at)
    model, platt = _fit_calibrated(
        chosen, refit.features, y_refit, refit.customer_ids, params, p_bgnbd=p_bg_refit
    )
    serving_base = bgnbd_at(plan.validation + pd.Timedelta(days=plan.horizon_days))

    recency = names.index("recency_days")
    base_p, base_edges = _recency_baseline(
        fit.features[:, recency], y_fit, val.features[:, recency]
    )
    baseline = classification(y_val, base_p)
    bgnbd = classification(y_val, bgnbd_p)
    rows = held_out_rows(val.features, 5000)
    native = platt.apply(
        _raw_probability(chosen, model, rows), predict_churn(serving_base, rows, names, days)
    )
    onnx_model = _export(chosen, model, names, platt, (serving_base.bgnbd, float(days)))

    serving = _serving(chosen, model, refit.features, names=names, params=params, platt=platt)
    validation = {**classification(y_val, p_val), "reliability": reliability(y_val, p_val)}
    summary = [
        SummaryRow(m, validation[m], baseline[m], m != "brier", bgnbd[m])
        for m in ("roc_auc", "pr_auc", "brier")
    ]
    return TrainedModel(
        name="churn",
        onnx_model=onnx_model,
        features=list(names),
        outputs=[
            output_spec(
                "probability",
                "float32",
                [None],
                f"calibrated probability of no purchase in the next {params.churn_days} days",
            )
        ],
        parity_rows=rows,
        native_output=native,
        parity_output="probability",
        tolerance=1e-5,
        rtol=0.0,
        metrics={
            "split": (
                "time-based: validated on the latest fully observed window (fit windows end at "
                "or before it); the exported model is the same configuration refitted on "
                "cutoffs up to the validation one"
            ),
            "selection": "higher validation PR-AUC of the raw candidate probabilities",
            "chosen": chosen,
            "validation": validation,
            "baseline": {
                **baseline,
                "name": "fit-period churn rate of the customer's recency decile",
                "recency_edges": base_edges,
                "reliability": reliability(y_val, base_p),
            },
            "bgnbd": {
                **bgnbd,
                "name": "BG/NBD P(no purchase in the window), fitted on the validation "
                "cutoff's history",
                "parameters": customer_base.as_manifest(),
                "reliability": reliability(y_val, bgnbd_p),
            },
            "candidates": {"uncalibrated": scores},
        },
        training={
            "cutoffs": plan.as_manifest(),
            "rows": {"fit": len(fit), "validation": len(val), "refit": len(refit)},
            "label": (
                "1 when the customer has no sale invoice in "
                f"[cutoff, cutoff + {params.churn_days} days)"
            ),
            "population": "customers with at least one sale invoice before the cutoff",
            "parameters": {
                "churn_days": params.churn_days,
                "model": chosen,
                "xgboost": {
                    "n_estimators": params.n_estimators,
                    "max_depth": params.max_depth,
                    "learning_rate": params.learning_rate,
                },
                "logistic_regression": {"C": 1.0, "transform": "signed_log + StandardScaler"},
                "calibration": {
                    "method": "logistic stacking of logit(out-of-fold probability) "
                    f"({CROSS_FIT_FOLDS} customer folds of the refit rows) and logit(BG/NBD "
                    "P(no purchase)), BG/NBD fitted at each row's own cutoff",
                    "slope": platt.slope,
                    "bgnbd_slope": platt.bgnbd_slope,
                    "intercept": platt.intercept,
                    "serving_bgnbd": serving_base.as_manifest(),
                },
            },
        },
        serving=serving,
        summary=summary,
    )


def _serving(
    kind: str,
    model: Any,
    x_fit: np.ndarray,
    *,
    names: list[str],
    params: ChurnParams,
    platt: Platt,
) -> dict[str, Any]:
    means = x_fit.astype(np.float64).mean(axis=0)
    stds = x_fit.astype(np.float64).std(axis=0)
    serving: dict[str, Any] = {
        "churn_days": params.churn_days,
        "risk_thresholds": list(RISK_THRESHOLDS),
        "risk_levels": ["LOW", "MEDIUM", "HIGH", "CRITICAL"],
        "model_type": kind,
        "feature_means": dict(zip(names, means.round(6).tolist(), strict=True)),
        "feature_stds": dict(zip(names, stds.round(6).tolist(), strict=True)),
        "calibration": {
            "method": "platt stacked with BG/NBD",
            "slope": platt.slope,
            "bgnbd_slope": platt.bgnbd_slope,
            "intercept": platt.intercept,
        },
    }
    if kind == "logistic_regression":
        scaler, lr = model.named_steps["scale"], model.named_steps["lr"]
        coef = lr.coef_[0]
        serving["logistic_regression"] = {
            "transform": "signed_log: sign(x) * log(1 + |x|), then (z - mean) / scale",
            "coefficients": dict(zip(names, coef.tolist(), strict=True)),
            "intercept": float(lr.intercept_[0]),
            "scaler_mean": dict(zip(names, scaler.mean_.tolist(), strict=True)),
            "scaler_scale": dict(zip(names, scaler.scale_.tolist(), strict=True)),
        }
        importance = np.abs(coef)
    else:
        importance = np.asarray(model.feature_importances_, dtype=np.float64)
    importance = importance / importance.sum() if importance.sum() > 0 else importance
    serving["importances"] = dict(zip(names, importance.round(6).tolist(), strict=True))
    serving["importance_kind"] = "|coefficient|" if kind == "logistic_regression" else "gain"
    return serving

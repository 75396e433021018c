"""Segmentation: signed-log RFM -> StandardScaler -> KMeans(6), clusters named from centroids.

Names are given by the assignment of the six names to the six clusters that maximises the
total fit of each name's rule to the cluster's standardised centroid (r = recency, f =
frequency, m = monetary; higher r means longer since the last purchase). Exhaustive over the
720 assignments, ties broken by cluster order, so the same centroids always get the same names.

Quality is measured on the validation cutoff as how much of the variance of each customer's
next-period spend (log1p) the segments explain when each segment predicts its fit-period mean;
the naive baseline segments by recency quintile alone.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from onnx import TensorProto
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from crm.features import RFM_FEATURES, rfm_edges, rfm_scores
from training.labels import CutoffPlan
from training.models.base import (
    SEED,
    SummaryRow,
    TrainedModel,
    held_out_rows,
    output_spec,
    subsample,
)
from training.observations import FeatureStore
from training.onnx_graph import INPUT_NAME, ML_OPSET, OPSET, GraphBuilder, signed_log, wrap_model

RFM = RFM_FEATURES
N_CLUSTERS = 6
INNER = "inner_rfm"
SEGMENT_RULES: dict[str, tuple[float, float, float]] = {
    # weights on (r, f, m) of the standardised centroid; "Regular" prefers the middle
    "VIP": (-1.0, 1.0, 1.5),
    "Loyal": (-1.0, 1.5, 0.5),
    "New": (-1.5, -1.0, 0.0),
    "At-Risk": (1.0, 1.0, 1.0),
    "Lost": (1.5, -1.0, -1.0),
}
ACTIONS: dict[str, str] = {
    "VIP": "Reward: early access, a personal thank-you and premium service; no discounts needed.",
    "Loyal": "Deepen: loyalty programme perks and cross-sell from adjacent categories.",
    "Regular": "Grow: personalised recommendations and bundles to lift frequency.",
    "New": "Onboard: welcome series and a second-purchase incentive within 30 days.",
    "At-Risk": "Win back now: personal reminder plus a time-limited offer on favourite categories.",
    "Lost": "Reactivate cheaply: one low-cost email; suppress from paid channels if no response.",
}
SEGMENT_NAMES: tuple[str, ...] = ("VIP", "Loyal", "Regular", "New", "At-Risk", "Lost")


@dataclass(frozen=True)
class SegmentationParams:
    horizon_days: int = 90
    max_fit_rows: int = 50_000


def name_clusters(centroids: np.ndarray) -> dict[int, str]:
    """Deterministic names for standardised (r, f, m) centroids, one name per cluster."""
    k = len(centroids)
    if k != len(SEGMENT_NAMES):
        raise ValueError(f"naming needs {len(SEGMENT_NAMES)} clusters, got {k}")

    def fit(name: str, c: np.ndarray) -> float:
        if name == "Regular":
            return -float(np.abs(c).sum())
        return float(np.dot(SEGMENT_RULES[name], c))

    table = np.array([[fit(n, c) for n in SEGMENT_NAMES] for c in centroids])
    best, best_score = None, -np.inf
    for perm in itertools.permutations(range(k)):
        score = sum(table[cluster, name] for cluster, name in enumerate(perm))
        if score > best_score + 1e-12:
            best, best_score = perm, score
    assert best is not None
    return {cluster: SEGMENT_NAMES[name] for cluster, name in enumerate(best)}


def explained_variance(
    groups_fit: np.ndarray, y_fit: np.ndarray, groups_val: np.ndarray, y_val: np.ndarray
) -> float:
    """1 - SSE / SST on validation when each group predicts its fit-period mean (y may be 2-D)."""
    y_fit = np.asarray(y_fit, dtype=np.float64).reshape(len(groups_fit), -1)
    y_val = np.asarray(y_val, dtype=np.float64).reshape(len(groups_val), -1)
    size = max(int(groups_fit.max(initial=0)), int(groups_val.max(initial=0))) + 1
    counts = np.bincount(groups_fit, minlength=size)[:, None]
    sums = np.column_stack(
        [
            np.bincount(groups_fit, weights=y_fit[:, j], minlength=size)
            for j in range(y_fit.shape[1])
        ]
    )
    overall = y_fit.mean(axis=0)
    means = np.where(counts > 0, sums / np.maximum(counts, 1), overall)
    sse = ((y_val - means[groups_val]) ** 2).sum()
    sst = ((y_val - overall) ** 2).sum()
    return float(1.0 - sse / sst) if sst > 0 else 0.0


def _export(pipeline: Pipeline, names: list[str], rfm_idx: list[int]) -> bytes:
    inner = convert_sklearn(
        pipeline,
        initial_types=[(INNER, FloatTensorType([None, len(rfm_idx)]))],
        target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET},
    )
    label = next(
        o.name for o in inner.graph.output if o.type.tensor_type.elem_type == TensorProto.INT64
    )
    pre, post = GraphBuilder("pre"), GraphBuilder("post")
    pre_out = pre.signed_log(pre.columns(INPUT_NAME, rfm_idx))
    post.flatten(label, "cluster")
    return wrap_model(
        inner,
        inner_input=INNER,
        n_features=len(names),
        pre=pre,
        pre_output=pre_out,
        post=post,
        outputs=[("cluster", TensorProto.INT64, [None])],
        doc="segmentation: KMeans cluster of signed-log, standardised recency/frequency/monetary",
    )


def train_segmentation(
    store: FeatureStore, plan: CutoffPlan, params: SegmentationParams
) -> TrainedModel:
    names = store.names
    rfm_idx = [names.index(n) for n in RFM]
    fit = store.observations(plan.fit, params.horizon_days)
    fit = fit.take(subsample(len(fit), params.max_fit_rows))
    val = store.observations([plan.validation], params.horizon_days)
    pipeline = _fit_clusters(fit.features[:, rfm_idx])
    kmeans = pipeline.named_steps["kmeans"]
    scaler = pipeline.named_steps["scale"]
    segment_of = name_clusters(kmeans.cluster_centers_)

    def native(x: np.ndarray) -> np.ndarray:
        return pipeline.predict(signed_log(x[:, rfm_idx].astype(np.float32)).astype(np.float64))

    edges = rfm_edges(*(fit.features[:, i] for i in rfm_idx))
    labels_fit, labels_val = native(fit.features), native(val.features)
    base_fit = rfm_score_groups(*rfm_scores(*(fit.features[:, i] for i in rfm_idx), edges))
    base_val = rfm_score_groups(*rfm_scores(*(val.features[:, i] for i in rfm_idx), edges))
    r_fit = rfm_scores(*(fit.features[:, i] for i in rfm_idx), edges)[0]
    r_val = rfm_scores(*(val.features[:, i] for i in rfm_idx), edges)[0]
    scaled_fit = scaler.transform(signed_log(fit.features[:, rfm_idx].astype(np.float64)))
    scaled_val = scaler.transform(signed_log(val.features[:, rfm_idx].astype(np.float64)))
    outcomes = {
        "rfm_r2": (scaled_fit, scaled_val),
        "future_spend_r2": (np.log1p(fit.spend), np.log1p(val.spend)),
        "future_purchase_r2": (fit.purchased.astype(float), val.purchased.astype(float)),
    }
    validation: dict[str, float] = {}
    baseline: dict[str, float] = {}
    recency_only: dict[str, float] = {}
    for metric, (y_fit, y_val) in outcomes.items():
        validation[metric] = explained_variance(labels_fit, y_fit, labels_val, y_val)
        baseline[metric] = explained_variance(base_fit, y_fit, base_val, y_val)
        recency_only[metric] = explained_variance(r_fit, y_fit, r_val, y_val)
    sample = subsample(len(val), 4000)
    validation["silhouette"] = (
        float(silhouette_score(scaled_val[sample], labels_val[sample]))
        if len(set(labels_val[sample])) > 1
        else 0.0
    )
    validation["rows"] = len(val)
    baseline["rows"] = len(val)

    # the validated configuration, refitted on cutoffs up to the validation one (features only:
    # clustering needs no labels), is what is exported and named
    refit = store.observations(plan.refit or plan.fit, params.horizon_days)
    refit = refit.take(subsample(len(refit), params.max_fit_rows))
    pipeline = _fit_clusters(refit.features[:, rfm_idx])
    kmeans, scaler = pipeline.named_steps["kmeans"], pipeline.named_steps["scale"]
    segment_of = name_clusters(kmeans.cluster_centers_)
    edges = rfm_edges(*(refit.features[:, i] for i in rfm_idx))
    labels_refit = native(refit.features)
    centroids = signed_inverse(scaler.inverse_transform(kmeans.cluster_centers_))
    segments = {
        str(c): {
            "segment": segment_of[c],
            "action": ACTIONS[segment_of[c]],
            "centroid": dict(zip(RFM, [round(float(v), 4) for v in centroids[c]], strict=True)),
            "share_of_fit_rows": round(float(np.mean(labels_refit == c)), 6),
        }
        for c in range(N_CLUSTERS)
    }
    rows = held_out_rows(val.features, 5000)
    return TrainedModel(
        name="segmentation",
        onnx_model=_export(pipeline, names, rfm_idx),
        features=list(names),
        outputs=[
            output_spec("cluster", "int64", [None], "KMeans cluster id; see serving.segments")
        ],
        parity_rows=rows,
        native_output=native(rows).astype(np.int64),
        parity_output="cluster",
        tolerance=0.0,
        rtol=0.0,
        metrics={
            "split": (
                "time-based: clusters fit on fit cutoffs, scored on the validation cutoff; the "
                "exported clusters are refitted on cutoffs up to the validation one"
            ),
            "measure": (
                "share of variance explained on the validation rows when each segment predicts "
                "its fit-period mean: of the scaled RFM inputs (rfm_r2), of next-"
                f"{params.horizon_days}-day log1p(spend) and of purchase/no purchase"
            ),
            "validation": _rounded(validation),
            "baseline": {
                **_rounded(baseline),
                "name": "classic RFM segmentation: R+F+M score sum cut into six groups",
            },
            "reference_recency_quintile": {
                **_rounded(recency_only),
                "name": "recency quintile alone (R score) as the segment",
            },
        },
        training={
            "cutoffs": plan.as_manifest(),
            "rows": {"fit": len(fit), "validation": len(val), "refit": len(refit)},
            "parameters": {
                "inputs": list(RFM),
                "transform": "signed_log then StandardScaler",
                "n_clusters": N_CLUSTERS,
                "n_init": 10,
                "random_state": SEED,
            },
        },
        serving={
            "rfm_edges": edges,
            "rfm_inputs": list(RFM),
            "segments": segments,
            "naming_rule": "maximum total fit of name rules to standardised centroids",
        },
        summary=[
            SummaryRow(m, validation[m], baseline[m], True)
            for m in ("rfm_r2", "future_spend_r2", "future_purchase_r2")
        ],
    )


def _fit_clusters(rfm: np.ndarray) -> Pipeline:
    pipeline = Pipeline(
        [
            ("scale", StandardScaler()),
            ("kmeans", KMeans(n_clusters=N_CLUSTERS, n_init=10, random_state=SEED)),
        ]
    )
    return pipeline.fit(signed_log(rfm.astype(np.float64)))


def rfm_score_groups(r: np.ndarray, f: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Six groups from the R+F+M score sum (3..15): 3-4, 5-6, 7-8, 9-10, 11-12, 13-15."""
    return np.minimum((r + f + m - 3) // 2, 5).astype(np.int64)


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: round(float(v), 6) if isinstance(v, float) else v for k, v in values.items()}


def signed_inverse(z: np.ndarray) -> np.ndarray:
    """Inverse of signed_log, for centroids in original units."""
    return np.sign(z) * np.expm1(np.abs(z))

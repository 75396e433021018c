"""Platt scaling folded into an XGBoost tree ensemble: the same probabilities as the
classifier followed by the calibration graph, from fewer nodes."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnxmltools import convert_xgboost
from onnxmltools.convert.common.data_types import FloatTensorType
from xgboost import XGBClassifier

from training.onnx_graph import (
    INPUT_NAME,
    OPSET,
    GraphBuilder,
    fold_platt_into_trees,
    wrap_model,
)
from training.parity import run_onnx

SLOPE, INTERCEPT = 0.83, -0.21


def _classifier(n_classes: int = 2) -> tuple[onnx.ModelProto, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(600, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] ** 2 > 1).astype(int) if n_classes == 2 else rng.integers(0, 3, 600)
    model = XGBClassifier(n_estimators=40, max_depth=4, learning_rate=0.2, n_jobs=1).fit(x, y)
    converted = convert_xgboost(
        model, initial_types=[("inner", FloatTensorType([None, 6]))], target_opset=OPSET
    )
    return converted, x


def _wrap(inner: onnx.ModelProto, post: GraphBuilder) -> bytes:
    pre = GraphBuilder("pre")
    return wrap_model(
        inner, inner_input="inner", n_features=6, pre=pre,
        pre_output=pre.op("Identity", [INPUT_NAME]), post=post,
        outputs=[("probability", onnx.TensorProto.FLOAT, [None])], doc="test",
    )  # fmt: skip


def test_folded_trees_match_classifier_then_platt() -> None:
    converted, x = _classifier()
    unfolded = GraphBuilder("post")
    probabilities = next(o.name for o in converted.graph.output if "prob" in o.name)
    positive = unfolded.column(probabilities, 1)
    unfolded.op("Identity", [unfolded.platt(positive, SLOPE, INTERCEPT, 1e-6)], "probability")
    folded = GraphBuilder("post")
    folded.flatten("calibrated", "probability")
    inner = fold_platt_into_trees(converted, SLOPE, INTERCEPT, "calibrated")
    want = run_onnx(_wrap(converted, unfolded), x, "probability")
    got = run_onnx(_wrap(inner, folded), x, "probability")
    assert got.shape == want.shape == (len(x),)
    assert np.abs(got - want).max() < 1e-6
    assert 0.05 < want.mean() < 0.95  # not a degenerate model that any graph would match
    ops = [n.op_type for n in onnx.load_from_string(_wrap(inner, folded)).graph.node]
    assert "TreeEnsembleClassifier" not in ops and ops.count("TreeEnsembleRegressor") == 1


def test_only_a_binary_logistic_classifier_is_folded() -> None:
    multiclass, _ = _classifier(n_classes=3)
    with pytest.raises(ValueError, match="binary"):
        fold_platt_into_trees(multiclass, SLOPE, INTERCEPT, "calibrated")

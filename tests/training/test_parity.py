"""The parity gate: a broken export fails it, and a failed gate writes nothing."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from crm.artifacts import list_names
from tests.training.conftest import TrainedRun
from training.parity import ParityError, check_parity
from training.publish import PendingArtifact, model_artifact, publish


def _shift_calibration(model_bytes: bytes, delta: float) -> bytes:
    """Move the Platt intercept inside the graph: what a wrong export would do. XGBoost has
    it folded into the trees' base value, logistic regression in an Add before the Sigmoid."""
    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    trees = [n for n in graph.node if n.op_type == "TreeEnsembleRegressor"]
    if trees:
        next(a for a in trees[0].attribute if a.name == "base_values").floats[0] += delta
        return model.SerializeToString()
    sigmoid = next(n for n in graph.node if n.op_type == "Sigmoid")
    add = next(n for n in graph.node if sigmoid.input[0] in n.output)
    init = next(i for i in graph.initializer if i.name in add.input)
    value = numpy_helper.to_array(init) + np.float32(delta)
    init.CopyFrom(numpy_helper.from_array(value.astype(np.float32), init.name))
    return model.SerializeToString()


def test_every_export_of_the_run_passed(trained: TrainedRun) -> None:
    for item in trained.result.pending:
        if item.parity is not None:
            assert item.parity.passed, item.name
            assert item.parity.rows > 100
            assert item.manifest["parity"]["passed"] is True


def test_tree_exports_are_checked_through_the_tree_evaluator_too(trained: TrainedRun) -> None:
    """Every export whose bulk is a tree ensemble is also scored the way the server will
    (crm.trees), against the native model, and is bitwise equal to onnxruntime."""
    checked = {
        item.name: item.manifest["parity"]["tree_evaluator"]
        for item in trained.result.pending
        if item.parity is not None and "tree_evaluator" in item.manifest["parity"]
    }
    trees_in = {
        m.name
        for m in trained.result.models.values()
        if any(
            n.op_type == "TreeEnsembleRegressor"
            for n in onnx.load_from_string(m.onnx_model).graph.node
        )
    }
    assert trees_in and set(checked) == trees_in
    for name, result in checked.items():
        assert result["passed"] and result["bitwise_equal_to_onnxruntime"], name
        assert result["rows"] > 100 and result["mismatches"] == 0, name


def test_broken_export_fails_the_gate_and_nothing_is_written(
    trained: TrainedRun, tmp_path: Path
) -> None:
    churn = trained.result.models["churn"]
    broken = dataclasses.replace(churn, onnx_model=_shift_calibration(churn.onnx_model, 0.01))
    parity = broken.parity()
    assert not parity.passed
    assert parity.max_abs_diff > 1e-4
    assert parity.mismatches > 0
    if parity.tree_evaluator is not None:  # xgboost: the evaluator reads the same broken base
        assert parity.tree_evaluator.mismatches > 0
        assert parity.tree_evaluator_equals_onnxruntime
    pending = [p for p in trained.result.pending if p.name != "churn"]
    pending.append(model_artifact(broken, {}))
    with pytest.raises(ParityError, match="churn"):
        publish(tmp_path, pending)
    assert list_names(tmp_path) == []


def test_within_tolerance_passes_and_shape_mismatch_fails(trained: TrainedRun) -> None:
    churn = trained.result.models["churn"]
    rows, native = churn.parity_rows, churn.native_output
    nudged = native + 5e-6
    assert check_parity(churn.onnx_model, rows, nudged, "probability", tolerance=1e-5).passed
    assert not check_parity(
        churn.onnx_model, rows, native + 5e-5, "probability", tolerance=1e-5
    ).passed
    assert not check_parity(churn.onnx_model, rows, native[:-1], "probability", tolerance=1).passed


def test_manifests_never_carry_nan(tmp_path: Path) -> None:
    item = PendingArtifact(
        "churn",
        {"x.bin": b"x"},
        {"kind": "other", "metrics": {"auc": float("nan"), "n": np.int64(3), "r": [np.inf]}},
    )
    publish(tmp_path, [item])
    text = (tmp_path / "churn" / "1" / "manifest.json").read_text()
    assert json.loads(text)["metrics"] == {"auc": None, "n": 3, "r": [None]}

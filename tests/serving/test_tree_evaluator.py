"""crm.trees (the tree ensembles of model.onnx in C, the rest of the graph in onnxruntime)
gives bitwise what onnxruntime gives for the whole graph: on the real trained models, on
snapshot rows, on rows that hit split thresholds exactly or one float32 either side, on NaN,
at every batch size the C kernel cuts differently; on hand-built ensembles with the modes,
missing-value tracking and uneven depths onnxruntime implements; and through a real server."""

from __future__ import annotations

from pathlib import Path

import grpc
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

from crm import trees
from inference import open_inference_grpc_pb2 as oip
from inference import open_inference_grpc_pb2_grpc as oip_grpc
from server.models import tail
from server.models.runtime import TREES_FROM_ROWS, new_session
from tests.serving.helpers import latest, model_features, snapshot

TREE_MODELS = ("churn", "spend", "demand", "revenue")
# around the kernel's 8-row lanes and 128-row blocks
BATCH_SIZES = (1, 3, 7, 8, 9, 127, 128, 129, 260, 1000)

pytestmark = pytest.mark.skipif(not trees.NATIVE, reason="crm._trees is not built")


def _whole_graph(session: ort.InferenceSession, x: np.ndarray) -> dict[str, np.ndarray]:
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"features": x}), strict=True))


def _trees_alone(node: onnx.NodeProto, n_features: int) -> ort.InferenceSession:
    """The ensemble node by itself, as onnxruntime runs it."""
    graph = helper.make_graph(
        [node],
        "trees_alone",
        [helper.make_tensor_value_info(node.input[0], onnx.TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info(node.output[0], onnx.TensorProto.FLOAT, [None, 1])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 15), helper.make_opsetid("ai.onnx.ml", 3)]
    )
    model.ir_version = 8
    return new_session(model.SerializeToString(), 1)


def _model_rows(artifacts: Path, name: str, ensemble: trees.TreeEnsemble) -> np.ndarray:
    """Customer models: the snapshot's rows. Product and invoice models (demand, revenue)
    have no rows in the artifacts: values drawn between their thresholds, without NaN."""
    _, values, names, _ = snapshot(artifacts)
    features = model_features(artifacts, name)
    if set(features) <= set(names):
        columns = [names.index(f) for f in features]
        return np.ascontiguousarray(values[:, columns], dtype=np.float32)
    rows = trees.probe_rows(ensemble, rows=1000, seed=11)
    return np.nan_to_num(rows, nan=0.0)


@pytest.mark.parametrize("name", TREE_MODELS)
def test_trained_model_bitwise_equals_onnxruntime(trained_artifacts: Path, name: str) -> None:
    raw = (latest(trained_artifacts, name)[0] / "model.onnx").read_bytes()
    whole = new_session(raw, 1)
    scorer = trees.scorer(raw, lambda rest: new_session(rest, 1))
    ensemble = scorer.split.ensemble
    probe = trees.probe_rows(ensemble, rows=2000, seed=7)
    splits = ensemble.splits.reshape(-1)
    on_threshold = probe[:, splits["feature"]] == splits["threshold"]
    assert on_threshold.any(), "the probe never hits a threshold exactly"
    assert np.isnan(probe).any()
    rows = _model_rows(trained_artifacts, name, ensemble)
    for label, x in (
        ("snapshot", rows),
        ("probe", probe),
        ("all NaN", np.full_like(probe, np.nan)),
    ):
        for size in BATCH_SIZES:
            batch = np.ascontiguousarray(x[:size])
            assert trees.disagreement(scorer.run(batch), _whole_graph(whole, batch)) is None, (
                label,
                size,
            )
    # the ensemble alone against onnxruntime's TreeEnsembleRegressor alone: the sums themselves
    node = next(n for n in onnx.load_from_string(raw).graph.node if n.op_type == trees.TREE_OP)
    alone = _trees_alone(node, ensemble.n_features)
    for x in (rows, probe):
        (want,) = alone.run(None, {node.input[0]: x})
        assert np.array_equal(ensemble.predict(x), want, equal_nan=True)


def _ensemble(modes: list[str], missing: list[int], base: list[float] | None) -> onnx.NodeProto:
    """Two trees on 3 features with uneven depths: tree 0 splits on f0 then (true side) on f1,
    its false side is a leaf at depth 1; tree 1 is a single split on f2 with a leaf under
    it on one side and a depth-3 chain on the other."""
    tree0 = [  # node id, feature, threshold, true, false (leaves: feature -1)
        (0, 0, 0.5, 1, 2), (1, 1, -1.0, 3, 4), (2, -1, 0, 0, 0), (3, -1, 0, 0, 0), (4, -1, 0, 0, 0),
    ]  # fmt: skip
    tree1 = [
        (0, 2, 2.0, 1, 2), (1, -1, 0, 0, 0), (2, 0, 1.5, 3, 4), (3, 1, 0.25, 5, 6),
        (4, -1, 0, 0, 0), (5, -1, 0, 0, 0), (6, -1, 0, 0, 0),
    ]  # fmt: skip
    nodes = [(0, *n) for n in tree0] + [(1, *n) for n in tree1]
    leaves = [(t, n) for t, n, f, *_ in nodes if f < 0]
    split_modes = iter(modes)
    split_missing = iter(missing)
    attrs = {
        "nodes_treeids": [n[0] for n in nodes],
        "nodes_nodeids": [n[1] for n in nodes],
        "nodes_featureids": [max(n[2], 0) for n in nodes],
        "nodes_values": [float(n[3]) for n in nodes],
        "nodes_truenodeids": [n[4] for n in nodes],
        "nodes_falsenodeids": [n[5] for n in nodes],
        "nodes_modes": ["LEAF" if n[2] < 0 else next(split_modes) for n in nodes],
        "nodes_missing_value_tracks_true": [0 if n[2] < 0 else next(split_missing) for n in nodes],
        "target_treeids": [t for t, _ in leaves],
        "target_nodeids": [n for _, n in leaves],
        "target_ids": [0] * len(leaves),
        "target_weights": [0.1 * (i + 1) * (-1) ** i for i in range(len(leaves))],
        "n_targets": 1,
    }
    if base is not None:
        attrs["base_values"] = base
    return helper.make_node(
        "TreeEnsembleRegressor", ["features"], ["margin"], domain="ai.onnx.ml", **attrs
    )


@pytest.mark.parametrize("mode", ["BRANCH_LT", "BRANCH_LEQ"])
@pytest.mark.parametrize("missing", [[0] * 5, [1, 0, 1, 1, 0]])
@pytest.mark.parametrize("base", [None, [0.125]])
def test_hand_built_ensembles_equal_onnxruntime(mode: str, missing: list[int], base) -> None:
    node = _ensemble([mode] * 5, missing, base)
    ensemble = trees.flatten(node, 3)
    assert ensemble.depth == 3
    assert (ensemble.missing is not None) == any(missing)
    values = np.array([-1.0, 0.25, 0.5, 1.5, 2.0, 3.0, np.nan], dtype=np.float32)
    grid = np.array(np.meshgrid(values, values, values)).reshape(3, -1).T  # every combination
    x = np.ascontiguousarray(grid, dtype=np.float32)
    (want,) = _trees_alone(node, 3).run(None, {"features": x})
    got = ensemble.predict(x)
    assert got.dtype == want.dtype and got.shape == want.shape == (len(x), 1)
    assert np.array_equal(got, want)
    assert len(np.unique(got)) > 4  # the grid reaches many leaves, not one path


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"modes": ["BRANCH_GT"] * 5}, "split modes"),
        (
            {"modes": ["BRANCH_LT", "BRANCH_LEQ", "BRANCH_LT", "BRANCH_LT", "BRANCH_LT"]},
            "split modes",
        ),
        ({"base": [0.1, 0.2]}, "base values"),
    ],
)
def test_what_we_do_not_reproduce_is_refused(change: dict, why: str) -> None:
    node = _ensemble(change.get("modes", ["BRANCH_LT"] * 5), [0] * 5, change.get("base"))
    with pytest.raises(trees.NotEligible, match=why):
        trees.flatten(node, 3)


def test_graph_without_trees_is_refused(trained_artifacts: Path) -> None:
    raw = (latest(trained_artifacts, "segmentation")[0] / "model.onnx").read_bytes()
    with pytest.raises(trees.NotEligible, match="expected one TreeEnsembleRegressor"):
        trees.split(raw)


def _infer(channel: grpc.Channel, name: str, x: np.ndarray) -> dict[str, np.ndarray]:
    """ModelInfer with the rows as raw float32: the served model's outputs, undecoded."""
    request = oip.ModelInferRequest(
        model_name=name,
        inputs=[
            oip.ModelInferRequest.InferInputTensor(
                name="features", datatype="FP32", shape=list(x.shape)
            )
        ],
        raw_input_contents=[x.astype("<f4").tobytes()],
    )
    reply = oip_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
    assert reply.model_name == name and reply.model_version
    dtypes = {"FP32": "<f4", "INT64": "<i8"}
    return {
        out.name: np.frombuffer(raw, dtype=dtypes[out.datatype]).reshape(tuple(out.shape))
        for out, raw in zip(reply.outputs, reply.raw_output_contents, strict=True)
    }


def test_served_by_features_equals_whole_graph_onnxruntime(served, trained_artifacts: Path) -> None:
    """The server picked the evaluator for every tree model (its load log says so) and what it
    answers by features is, to the bit, onnxruntime's whole graph on the same call of 8 rows
    or more; a smaller call runs the graph after the trees in C (server.models.tail, where the model's
    is elementwise, as churn's is) and stays within tail.TOLERANCE of it."""
    records = served.log_records()
    for name in (*TREE_MODELS, "segmentation"):
        engines = {r.get("engine") for r in records if r.get("model") == name and "engine" in r}
        assert engines == {"onnxruntime" if name == "segmentation" else "crm.trees"}, name
    for name in ("churn", "spend"):  # customer models: real snapshot rows pass validation
        raw = (latest(trained_artifacts, name)[0] / "model.onnx").read_bytes()
        whole = new_session(raw, 1)
        rows = _model_rows(trained_artifacts, name, trees.split(raw).ensemble)
        for x in (rows[:1], rows[:64], rows[:257]):
            got = _infer(served.channel, name, np.ascontiguousarray(x))
            want = _whole_graph(whole, np.ascontiguousarray(x))
            assert list(got) == list(want), name
            for output, value in want.items():
                have = got[output].reshape(value.shape)
                if x.shape[0] < TREES_FROM_ROWS:
                    assert tail.agreement(have, value) <= tail.TOLERANCE, (name, output)
                else:
                    assert np.array_equal(have, value), (name, output)
    tails = {r.get("model") for r in records if "graph after the trees in C" in r.get("msg", "")}
    assert {"churn", "demand", "revenue"} <= tails and "spend" not in tails


def test_switched_off_the_server_answers_the_same_bits_from_onnxruntime(
    served, start_server, trained_artifacts: Path
) -> None:
    """--tree-evaluator false: every model on onnxruntime (the load log says so), and what it
    answers by features is bitwise what the default server (crm.trees) answers."""
    plain = start_server(artifacts=trained_artifacts, extra_args=["--tree-evaluator", "false"])
    engines = {r.get("engine") for r in plain.log_records() if "engine" in r}
    assert engines == {"onnxruntime"}
    for name in ("churn", "spend"):
        raw = (latest(trained_artifacts, name)[0] / "model.onnx").read_bytes()
        rows = _model_rows(trained_artifacts, name, trees.split(raw).ensemble)
        x = np.ascontiguousarray(rows[:100])
        by_trees, by_ort = _infer(served.channel, name, x), _infer(plain.channel, name, x)
        assert list(by_trees) == list(by_ort)
        for output, value in by_ort.items():
            assert np.array_equal(by_trees[output], value), (name, output)


def test_with_two_onnxruntime_threads_the_bits_stay_the_one_thread_bits(
    served, start_server, trained_artifacts: Path
) -> None:
    """--ort-threads 2: the evaluator is still chosen (its probe is checked against
    onnxruntime on one thread, whose sums do not depend on a thread count), and the server
    answers exactly what the one-thread server and onnxruntime on one thread answer."""
    two = start_server(artifacts=trained_artifacts, extra_args=["--ort-threads", "2"])
    churn = {r.get("engine") for r in two.log_records() if r.get("model") == "churn"}
    assert churn - {None} == {"crm.trees"}
    raw = (latest(trained_artifacts, "churn")[0] / "model.onnx").read_bytes()
    rows = _model_rows(trained_artifacts, "churn", trees.split(raw).ensemble)
    x = np.ascontiguousarray(rows[:257])
    want = _whole_graph(new_session(raw, 1), x)
    for server in (two, served):
        got = _infer(server.channel, "churn", x)
        assert np.array_equal(got["probability"], want["probability"])

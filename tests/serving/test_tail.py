"""server.models.tail (the graph after a model's trees, in C, for calls of a few rows): what it compiles,
what it refuses, how close it stays to onnxruntime, and that the server uses it only for
small calls, unbatched, with calls of 8 rows or more still onnxruntime's bits."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from crm import trees
from server.metrics import ServerMetrics
from server.models import tail
from server.models.executor import BatchingConfig, ModelExecutor
from server.models.inflight import InFlight
from server.models.registry import ModelRegistry
from server.models.runtime import TREES_FROM_ROWS, new_session
from tests.serving.helpers import latest

pytestmark = pytest.mark.skipif(
    not (tail.NATIVE and trees.NATIVE), reason="server.models._tail or crm._trees is not built"
)
N_FEATURES = 3


def _rest(nodes: list[onnx.NodeProto], output: str, consts: dict[str, np.ndarray]) -> bytes:
    """A rest graph as crm.trees cuts one: inputs `features` [N, 3] and `sums` [N, 1]."""
    graph = helper.make_graph(
        nodes,
        "rest",
        [
            helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, N_FEATURES]),
            helper.make_tensor_value_info("sums", TensorProto.FLOAT, [None, 1]),
        ],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in consts.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def _columns() -> tuple[list[onnx.NodeProto], dict[str, np.ndarray]]:
    """Nodes that give `c0`, `c1`, `c2` (the feature columns) and `s` (the sums as [N])."""
    consts = {f"i{k}": np.array(k, dtype=np.int64) for k in range(N_FEATURES)}
    consts["flat"] = np.array([-1], dtype=np.int64)
    nodes = [helper.make_node("Gather", ["features", f"i{k}"], [f"c{k}"], axis=1) for k in range(3)]
    nodes.append(helper.make_node("Reshape", ["sums", "flat"], ["s"]))
    return nodes, consts


def _rows(n: int = 4000, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Finite features of mixed signs and magnitudes (some equal, some zero) and tree sums."""
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(n, N_FEATURES)) * rng.choice([0.01, 1.0, 30.0], (n, 1))).astype(
        np.float32
    )
    x[::7, 1] = x[::7, 0]  # ties for Max, Min, Greater, Less
    x[::11, 2] = 0.0
    sums = rng.normal(size=(n, 1)).astype(np.float32)
    return x, sums


def _one_row_answers(session: ort.InferenceSession, x: np.ndarray, sums: np.ndarray) -> np.ndarray:
    """onnxruntime's answer to each row alone (the reference a small call is held to)."""
    return np.concatenate(
        [
            session.run(None, {"features": x[i : i + 1], "sums": sums[i : i + 1]})[0]
            for i in range(x.shape[0])
        ]
    )


EXACT = [  # op, its inputs: float32 arithmetic, comparison and selection: onnxruntime's bits
    ("Add", ["c0", "c1"]),
    ("Sub", ["c0", "half"]),
    ("Mul", ["s", "c2"]),
    ("Div", ["c0", "c1"]),
    ("Max", ["c0", "c1"]),
    ("Min", ["c1", "half"]),
    ("Neg", ["s"]),
    ("Clip", ["c0", "neg_half", "half"]),
]


@pytest.mark.parametrize(("op", "ins"), EXACT, ids=[op for op, _ in EXACT])
def test_arithmetic_is_onnxruntimes_bits(op: str, ins: list[str]) -> None:
    nodes, consts = _columns()
    consts["half"] = np.array(0.5, dtype=np.float32)
    consts["neg_half"] = np.array([-0.5], dtype=np.float32)
    nodes.append(helper.make_node(op, ins, ["y"]))
    raw = _rest(nodes, "y", consts)
    compiled = tail.compile_tail(raw, "features", "sums", N_FEATURES)
    x, sums = _rows()
    got = compiled.run(x, sums)["y"]
    want = _one_row_answers(new_session(raw, 1), x, sums)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got, want, equal_nan=True)


def test_comparisons_and_where_are_onnxruntimes_bits() -> None:
    nodes, consts = _columns()
    nodes += [
        helper.make_node("Greater", ["c0", "c1"], ["gt"]),
        helper.make_node("Less", ["c1", "c2"], ["lt"]),
        helper.make_node("Where", ["gt", "c2", "s"], ["w1"]),
        helper.make_node("Where", ["lt", "w1", "c0"], ["y"]),
    ]
    raw = _rest(nodes, "y", consts)
    x, sums = _rows()
    got = tail.compile_tail(raw, "features", "sums", N_FEATURES).run(x, sums)["y"]
    assert np.array_equal(got, _one_row_answers(new_session(raw, 1), x, sums))


@pytest.mark.parametrize("op", ["Log", "Exp", "Sigmoid"])
def test_transcendentals_stay_within_the_tolerance(op: str) -> None:
    """logf, expf and 1 / (1 + expf(-x)) against onnxruntime's own kernels: not always the
    same last bit, never further apart than tail.TOLERANCE (relative above 1)."""
    nodes, consts = _columns()
    consts["shift"] = np.array(40.0, dtype=np.float32)
    nodes.append(helper.make_node("Add", ["c0", "shift"], ["pos"]))
    nodes.append(helper.make_node(op, ["pos" if op == "Log" else "c0"], ["y"]))
    raw = _rest(nodes, "y", consts)
    x, sums = _rows()
    x[:, 0] = np.clip(x[:, 0], -39.0, 80.0)  # Exp stays finite in float32; Log's input > 0
    got = tail.compile_tail(raw, "features", "sums", N_FEATURES).run(x, sums)["y"]
    want = _one_row_answers(new_session(raw, 1), x, sums)
    assert tail.agreement(got, want) <= tail.TOLERANCE


@pytest.mark.parametrize(
    ("build", "why"),
    [
        (lambda: [helper.make_node("MatMul", ["c0", "c1"], ["y"])], "MatMul"),
        (lambda: [helper.make_node("Add", ["sums", "c0"], ["y"])], "mixes"),
        (lambda: [helper.make_node("Add", ["features", "sums"], ["y"])], "not one value per row"),
        (lambda: [helper.make_node("Add", ["c0", "vector"], ["y"])], "not a float32 scalar"),
        (lambda: [helper.make_node("Gather", ["features", "two"], ["y"], axis=1)], "one column"),
        (lambda: [helper.make_node("Gather", ["features", "i0"], ["y"], axis=0)], "one column"),
        (lambda: [helper.make_node("LeakyRelu", ["c0"], ["y"], alpha=0.1)], "attributes"),
        (lambda: [helper.make_node("Add", ["c0", "c1"], ["y"]),
                  helper.make_node("Add", ["half", "half"], ["y2"])], "constants only"),
    ],
    ids=["unknown-op", "N-vs-N1", "whole-features", "vector-constant", "two-columns",
         "row-gather", "attributes", "constant-folding"],
)  # fmt: skip
def test_what_the_tail_does_not_compute_is_refused(build, why: str) -> None:
    nodes, consts = _columns()
    consts["vector"] = np.array([1.0, 2.0], dtype=np.float32)
    consts["two"] = np.array([0, 1], dtype=np.int64)
    consts["half"] = np.array(0.5, dtype=np.float32)
    extra = build()
    raw = _rest(nodes + extra, extra[0].output[0], consts)
    with pytest.raises(tail.NotEligible, match=why):
        tail.compile_tail(raw, "features", "sums", N_FEATURES)


def test_a_malformed_program_is_an_error_not_a_crash() -> None:
    nodes, consts = _columns()
    nodes.append(helper.make_node("Add", ["c0", "c1"], ["y"]))
    good = tail.compile_tail(_rest(nodes, "y", consts), "features", "sums", N_FEATURES)
    x, sums = _rows(8)
    for step, slot, value in ((0, 1, 10_000), (0, 2, -1), (len(good.program) - 1, 0, 99)):
        program = good.program.copy()
        program[step, slot] = value
        bad = tail.Tail(**{**good.__dict__, "program": program})
        with pytest.raises(ValueError, match="run_tail"):
            bad.run(x, sums)
    with pytest.raises(ValueError, match="do not fit"):
        good.run(x[:, :2], sums)


@pytest.mark.parametrize("name", ["churn", "demand", "revenue"])
def test_trained_models_small_calls_stay_within_the_tolerance(
    trained_artifacts: Path, name: str
) -> None:
    """The trained models whose rest graph is elementwise: the server's small-call answer
    (trees and tail in C) against onnxruntime's whole graph on the same call, every size
    under 8 rows, on crm.trees' probe rows (NaN included)."""
    raw = (latest(trained_artifacts, name)[0] / "model.onnx").read_bytes()
    split = trees.split(raw)
    compiled = tail.compile_tail(
        split.rest, split.input_name, split.trees_input, split.ensemble.n_features
    )
    whole = new_session(raw, 1)
    probe = trees.probe_rows(split.ensemble, rows=700, seed=5)
    worst = 0.0
    for size in range(1, TREES_FROM_ROWS):
        for start in range(0, probe.shape[0] - size, 97):
            x = np.ascontiguousarray(probe[start : start + size])
            (want,) = whole.run(None, {"features": x})
            got = compiled.run(x, split.ensemble.predict(x))[compiled.output_name]
            worst = max(worst, tail.agreement(got, want))
    assert worst <= tail.TOLERANCE


def test_spend_per_category_outputs_stay_on_onnxruntime(trained_artifacts: Path) -> None:
    raw = (latest(trained_artifacts, "spend")[0] / "model.onnx").read_bytes()
    split = trees.split(raw)
    with pytest.raises(tail.NotEligible):
        tail.compile_tail(
            split.rest, split.input_name, split.trees_input, split.ensemble.n_features
        )


def test_small_calls_run_at_once_large_ones_stay_bitwise(trained_artifacts: Path) -> None:
    """Through the registry and the executor: the churn model takes the C tail; 16 threads of
    one-row calls are never merged (every model call holds one row, none waits in a queue),
    and a call of 8 rows or more is still onnxruntime's whole graph to the bit."""
    metrics = ServerMetrics()
    registry = ModelRegistry(trained_artifacts, metrics)
    registry.reload()
    artifact = registry.get("churn")
    assert artifact.model.unbatched_below == TREES_FROM_ROWS
    in_flight = InFlight()
    for _ in range(16):
        in_flight.enter()
    executor = ModelExecutor(
        metrics, BatchingConfig(max_queue_delay_us=2_000_000), in_flight=in_flight
    )
    probe = trees.probe_rows(trees.split(
        (latest(trained_artifacts, "churn")[0] / "model.onnx").read_bytes()
    ).ensemble, rows=320, seed=9)  # fmt: skip
    go = threading.Barrier(16)
    results: dict[int, np.ndarray] = {}

    def call(k: int) -> None:
        go.wait()
        for i in range(k, probe.shape[0], 16):
            results[i] = executor.run(artifact, probe[i : i + 1], 30.0)["probability"]

    threads = [threading.Thread(target=call, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    labels = {"model": "churn", "version": str(artifact.version)}
    sample = metrics.registry.get_sample_value
    assert sample("crm_batch_rows_count", labels) == probe.shape[0]
    assert sample("crm_batch_rows_sum", labels) == probe.shape[0]  # one row per model call
    assert sample("crm_batch_queue_wait_seconds_sum", labels) == 0.0
    whole = new_session((latest(trained_artifacts, "churn")[0] / "model.onnx").read_bytes(), 1)
    for i, got in results.items():
        (want,) = whole.run(None, {"features": probe[i : i + 1]})
        assert tail.agreement(got, want) <= tail.TOLERANCE
    big = np.ascontiguousarray(probe[:TREES_FROM_ROWS])
    (want,) = whole.run(None, {"features": big})
    assert np.array_equal(executor.run(artifact, big)["probability"], want, equal_nan=True)

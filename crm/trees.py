"""A model.onnx whose bulk is one tree ensemble, scored with the trees in C (crm._trees).

onnxruntime's TreeEnsembleRegressor walks node pointers one row at a time; on the churn model
(300 trees, depth 5) that is ~3-4x slower than xgboost's own predictor. `split` reads the
ensemble's attributes from the same model.onnx, flattens it to complete binary trees (see
crm/_trees.c) and cuts it out of the graph: what remains (the calibration and BG/NBD arithmetic
around the trees) is a graph of its own that takes the trees' output as an extra input, so
onnxruntime still runs every other node exactly as before. Only what our exports contain is
taken (one TreeEnsembleRegressor, one target, SUM, no post-transform, every split BRANCH_LT or
every split BRANCH_LEQ, fed by `features` through Identity nodes only); anything else raises
`NotEligible` and the caller keeps onnxruntime for the whole graph.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import onnx
from onnx import helper

try:
    from crm._trees import sum_trees
except ImportError:  # not built (no compiler at install time): callers keep onnxruntime
    NATIVE = False
else:
    NATIVE = True

TREE_OP = "TreeEnsembleRegressor"
ML_DOMAIN = "ai.onnx.ml"
# the default-domain opset the rest graph declares when the model declares none (onnxruntime
# accepts such a model; the checker does not once the rest graph has its bridging Identity)
BRIDGE_OPSET = 15
MAX_DEPTH = 12  # complete trees of 2**12 leaves: deeper ensembles stay on onnxruntime
_MODES = {b"BRANCH_LT": False, b"BRANCH_LEQ": True}
_SPLIT = np.dtype([("feature", "<i4"), ("threshold", "<f4")])


class NotEligible(ValueError):
    """The graph is not one this evaluator reproduces exactly; use onnxruntime for it."""


class Session(Protocol):
    """What we need of an onnxruntime InferenceSession (crm never imports onnxruntime)."""

    def run(self, output_names: Any, input_feed: Mapping[str, np.ndarray]) -> list[Any]: ...


@dataclass(frozen=True)
class TreeEnsemble:
    """Complete binary trees of one depth, as crm/_trees.c reads them."""

    n_features: int
    depth: int
    leq: bool
    base: float
    splits: np.ndarray  # _SPLIT [trees, 2**depth - 1]
    leaves: np.ndarray  # float32 [trees, 2**depth]
    missing: np.ndarray | None  # uint8 [trees, 2**depth - 1]; None when no NaN goes true

    def __post_init__(self) -> None:
        """What crm/_trees.c trusts without checking: the shapes, and splits that read
        features inside the row."""
        inner = (1 << self.depth) - 1
        trees = self.leaves.shape[0]
        if not 1 <= self.depth <= MAX_DEPTH or self.leaves.shape != (trees, inner + 1):
            raise ValueError(f"leaves {self.leaves.shape} do not fit depth {self.depth}")
        if self.splits.dtype != _SPLIT or self.splits.shape != (trees, inner):
            raise ValueError(f"splits {self.splits.dtype}{self.splits.shape} do not fit the leaves")
        if self.missing is not None and self.missing.shape != (trees, inner):
            raise ValueError(f"missing {self.missing.shape} does not fit the splits")
        features = self.splits["feature"]
        if features.size and not (features.min() >= 0 and features.max() < self.n_features):
            raise ValueError(f"a split reads a feature outside 0..{self.n_features - 1}")
        for array in (self.splits, self.leaves, self.missing):
            if array is not None:  # shared by every thread that scores: never written again
                array.flags.writeable = False

    @property
    def trees(self) -> int:
        return int(self.leaves.shape[0])

    def predict(self, x: np.ndarray) -> np.ndarray:
        """float32 [N, n_features] (C order) -> the ensemble's output, float32 [N, 1]."""
        if not NATIVE:
            raise NotEligible("crm._trees is not built")
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got {x.shape}")
        out = np.empty((x.shape[0], 1), dtype=np.float32)
        missing = b"" if self.missing is None else self.missing
        sum_trees(
            x, out, self.splits, self.leaves, missing, self.n_features, self.depth,
            self.leq, self.base,
        )  # fmt: skip
        return out


def _attributes(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def flatten(node: onnx.NodeProto, n_features: int) -> TreeEnsemble:
    """The ensemble of a TreeEnsembleRegressor node, with onnxruntime's semantics for it:
    per row, 0.0f plus each tree's leaf value in tree order, then plus the base value."""
    a = _attributes(node)
    unsupported = {k for k in a if k.endswith("_as_tensor")}
    if unsupported:
        raise NotEligible(f"double-precision attributes {sorted(unsupported)}")
    if int(a.get("n_targets", 1)) != 1:
        raise NotEligible(f"{a.get('n_targets')} targets")
    if a.get("aggregate_function", b"SUM") != b"SUM" or a.get("post_transform", b"NONE") != b"NONE":
        raise NotEligible("aggregate or post-transform other than SUM / NONE")
    base = list(a.get("base_values") or [])
    if len(base) > 1:
        raise NotEligible(f"{len(base)} base values")
    modes = {m for m in a["nodes_modes"] if m != b"LEAF"}
    if len(modes) != 1 or next(iter(modes)) not in _MODES:
        raise NotEligible(f"split modes {sorted(modes)}")
    weights: dict[tuple[int, int], list[float]] = defaultdict(list)
    for tree, node_id, target, weight in zip(
        a["target_treeids"], a["target_nodeids"], a["target_ids"], a["target_weights"], strict=True
    ):
        if target != 0:
            raise NotEligible(f"target id {target}")
        weights[(tree, node_id)].append(weight)
    nodes: dict[tuple[int, int], int] = {}
    roots: list[int] = []  # onnxruntime's tree order: first appearance in the node lists
    for i, (tree, node_id) in enumerate(zip(a["nodes_treeids"], a["nodes_nodeids"], strict=True)):
        if (tree, node_id) in nodes:
            raise NotEligible(f"node {tree}-{node_id} twice")
        if not roots or a["nodes_treeids"][roots[-1]] != tree:
            roots.append(i)
        nodes[(tree, node_id)] = i
    if len({a["nodes_treeids"][r] for r in roots}) != len(roots):
        raise NotEligible("a tree's nodes are not contiguous")

    def walk(i: int, depth: int) -> int:  # the depth of the subtree under node i
        if depth > MAX_DEPTH:
            raise NotEligible(f"a tree deeper than {MAX_DEPTH}")
        if a["nodes_modes"][i] == b"LEAF":
            if len(weights.get((a["nodes_treeids"][i], a["nodes_nodeids"][i]), [])) != 1:
                raise NotEligible("a leaf without exactly one weight")
            return 0
        tree = a["nodes_treeids"][i]
        children = [nodes.get((tree, a[k][i])) for k in ("nodes_truenodeids", "nodes_falsenodeids")]
        if None in children or not 0 <= a["nodes_featureids"][i] < n_features:
            raise NotEligible(f"node {tree}-{a['nodes_nodeids'][i]}: bad child or feature")
        return 1 + max(walk(c, depth + 1) for c in children if c is not None)

    depth = max(1, *(walk(r, 0) for r in roots))
    inner = (1 << depth) - 1
    splits = np.zeros((len(roots), inner), dtype=_SPLIT)
    leaves = np.zeros((len(roots), inner + 1), dtype=np.float32)
    missing = np.zeros((len(roots), inner), dtype=np.uint8)
    tracks = list(a.get("nodes_missing_value_tracks_true") or [])

    def place(t: int, i: int, slot: int, level: int) -> None:
        tree, node_id = a["nodes_treeids"][i], a["nodes_nodeids"][i]
        if a["nodes_modes"][i] == b"LEAF":  # fill every leaf slot under `slot`
            span = 1 << (depth - level)
            first = (slot + 1) * span - 1 - inner
            leaves[t, first : first + span] = weights[(tree, node_id)][0]
            return
        splits[t, slot] = (a["nodes_featureids"][i], a["nodes_values"][i])
        missing[t, slot] = 1 if i < len(tracks) and tracks[i] == 1 else 0
        place(t, nodes[(tree, a["nodes_truenodeids"][i])], 2 * slot + 1, level + 1)
        place(t, nodes[(tree, a["nodes_falsenodeids"][i])], 2 * slot + 2, level + 1)

    for t, r in enumerate(roots):
        place(t, r, 0, 0)
    return TreeEnsemble(
        n_features=n_features,
        depth=depth,
        leq=_MODES[next(iter(modes))],
        base=float(np.float32(base[0])) if base else 0.0,
        splits=splits,
        leaves=leaves,
        missing=missing if missing.any() else None,
    )


@dataclass(frozen=True)
class Split:
    """A model.onnx cut in two: the ensemble, and the rest of the graph as its own model whose
    inputs are the model's input (when the rest reads it) and `trees_input`, the ensemble's
    output [N, 1]; its outputs are the model's, by the same names, in the same order."""

    ensemble: TreeEnsemble
    input_name: str
    trees_input: str
    rest: bytes
    rest_reads_input: bool
    output_names: tuple[str, ...]


def _tree_node(graph: onnx.GraphProto) -> onnx.NodeProto:
    trees = [
        n for n in graph.node if n.domain == ML_DOMAIN and n.op_type.startswith("TreeEnsemble")
    ]
    if len(trees) != 1 or trees[0].op_type != TREE_OP:
        raise NotEligible(f"tree nodes {[n.op_type for n in trees]}: expected one {TREE_OP}")
    return trees[0]


def split(model: bytes) -> Split:
    """Cut the one tree ensemble out of `model` (NotEligible when it is not one we reproduce)."""
    proto = onnx.load_from_string(model)
    graph = proto.graph
    if len(graph.input) != 1:
        raise NotEligible(f"{len(graph.input)} graph inputs")
    source = graph.input[0]
    dims = source.type.tensor_type.shape.dim
    if source.type.tensor_type.elem_type != onnx.TensorProto.FLOAT or len(dims) != 2:
        raise NotEligible("the input is not a float32 matrix")
    if not dims[1].HasField("dim_value"):
        raise NotEligible("the input's width is not fixed")
    node = _tree_node(graph)
    producers = {out: n for n in graph.node for out in n.output}
    fed = node.input[0]
    while fed != source.name:  # the trees must read the raw input rows
        producer = producers.get(fed)
        if producer is None or producer.op_type != "Identity":
            raise NotEligible(f"the trees read {fed!r}, not the input through Identity nodes")
        fed = producer.input[0]
    ensemble = flatten(node, int(dims[1].dim_value))

    trees_input = f"{node.output[0]}__crm_trees"
    bridge = helper.make_node("Identity", [trees_input], [node.output[0]], name="crm_trees_bridge")
    at = list(graph.node).index(node)
    needed = {o.name for o in graph.output}
    kept: list[onnx.NodeProto] = []
    for n in reversed([*graph.node[:at], bridge, *graph.node[at + 1 :]]):  # only what outputs use
        if needed.intersection(n.output):
            kept.append(n)
            needed.update(i for i in n.input if i)
    kept.reverse()
    reads_input = source.name in needed
    inputs = [source] if reads_input else []
    inputs.append(helper.make_tensor_value_info(trees_input, onnx.TensorProto.FLOAT, [None, 1]))
    initializers = [t for t in graph.initializer if t.name in needed]
    rest_graph = helper.make_graph(
        kept, f"{graph.name}_rest", inputs, list(graph.output), initializers
    )
    opsets = list(proto.opset_import)
    if not any(o.domain in ("", "ai.onnx") for o in opsets):
        opsets.append(helper.make_opsetid("", BRIDGE_OPSET))
    rest = helper.make_model(rest_graph, opset_imports=opsets)
    rest.ir_version = proto.ir_version
    onnx.checker.check_model(rest)
    return Split(
        ensemble=ensemble,
        input_name=source.name,
        trees_input=trees_input,
        rest=rest.SerializeToString(),
        rest_reads_input=reads_input,
        output_names=tuple(o.name for o in graph.output),
    )


class TreeScorer:
    """A split model scored: the trees in C, then the rest of the graph in `session` (an
    onnxruntime session of `split.rest`), so every other node is onnxruntime's as before."""

    def __init__(self, cut: Split, session: Session) -> None:
        self.split = cut
        self.session = session

    def run(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """float32 [N, F] -> the model's outputs by name, as onnxruntime returns them."""
        feed = {self.split.trees_input: self.split.ensemble.predict(features)}
        if self.split.rest_reads_input:
            feed[self.split.input_name] = features
        outputs = self.session.run(None, feed)
        return dict(zip(self.split.output_names, outputs, strict=True))


def probe_rows(ensemble: TreeEnsemble, rows: int = 512, seed: int = 0) -> np.ndarray:
    """Deterministic rows that reach every kind of edge: each value is one of the thresholds
    its feature is split on (exactly equal), the float32 just above or below one, NaN (2%),
    or a value drawn between the feature's smallest and largest threshold."""
    rng = np.random.default_rng(seed)
    x = np.zeros((rows, ensemble.n_features), dtype=np.float32)
    splits = ensemble.splits.reshape(-1)
    for f in range(ensemble.n_features):
        cuts = np.unique(splits["threshold"][splits["feature"] == f])
        if cuts.size == 0:
            x[:, f] = rng.normal(size=rows)
            continue
        pick = cuts[rng.integers(0, cuts.size, rows)]
        kind = rng.integers(0, 4, rows)
        x[:, f] = np.where(kind == 1, np.nextafter(pick, np.float32(np.inf)), pick)
        x[:, f] = np.where(kind == 2, np.nextafter(pick, np.float32(-np.inf)), x[:, f])
        spread = rng.uniform(cuts.min(), cuts.max(), rows).astype(np.float32)
        x[:, f] = np.where(kind == 3, spread, x[:, f])
    x[rng.random(x.shape) < 0.02] = np.nan
    return x


def disagreement(got: Mapping[str, np.ndarray], want: Mapping[str, np.ndarray]) -> str | None:
    """None when every output is bitwise equal (NaN equal to NaN); else what differs."""
    if list(got) != list(want):
        return f"outputs {list(got)} vs {list(want)}"
    for name, value in want.items():
        a, b = np.asarray(got[name]), np.asarray(value)
        if a.dtype != b.dtype or a.shape != b.shape:
            return f"{name}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
        if not np.array_equal(a, b, equal_nan=a.dtype.kind == "f"):
            diff = np.nanmax(np.abs(a.astype(np.float64) - b.astype(np.float64)), initial=0.0)
            return f"{name}: {int((a != b).sum())} values differ, max |diff| {diff:.3g}"
    return None


def scorer(model: bytes, make_session: Callable[[bytes], Session]) -> TreeScorer:
    """A TreeScorer for `model` if it is eligible (NotEligible otherwise)."""
    if not NATIVE:
        raise NotEligible("crm._trees is not built")
    cut = split(model)
    return TreeScorer(cut, make_session(cut.rest))

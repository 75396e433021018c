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


class _Index:
    """Rows of (tree id, node id) pairs, found by pair with one sort and binary searches."""

    def __init__(
        self, trees: np.ndarray, nodes: np.ndarray, what: str, *, duplicates_allowed: bool = False
    ) -> None:
        if len(trees) and (
            trees.min() < 0 or nodes.min() < 0 or max(trees.max(), nodes.max()) >= 1 << 31
        ):
            raise NotEligible(f"{what} ids outside 0..2**31")
        keys = (trees << 32) | nodes
        self._order = np.argsort(keys, kind="stable")  # equal pairs keep their list order
        self._sorted = keys[self._order]
        same = self._sorted[1:] == self._sorted[:-1]
        if not duplicates_allowed and same.any():
            key = int(self._sorted[1:][same][0])
            raise NotEligible(f"{what} {key >> 32}-{key & 0xFFFFFFFF} twice")

    def find(self, trees: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        """The row of each pair (its first, in list order), or -1 where there is none."""
        return self.first_and_count(trees, nodes)[0]

    def first_and_count(
        self, trees: np.ndarray, nodes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        keys = (trees << 32) | nodes
        if not len(self._order):
            return np.full(len(keys), -1), np.zeros(len(keys), np.int64)
        lo = np.searchsorted(self._sorted, keys, side="left")
        hi = np.searchsorted(self._sorted, keys, side="right")
        found = hi > lo
        rows = np.where(found, self._order[np.minimum(lo, len(self._order) - 1)], -1)
        return rows, hi - lo


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
    tree_of = np.asarray(a["nodes_treeids"], dtype=np.int64)
    node_ids = np.asarray(a["nodes_nodeids"], dtype=np.int64)
    index = _Index(tree_of, node_ids, "node")
    # onnxruntime's tree order: first appearance in the node lists; a tree's first node is its root
    roots = np.flatnonzero(np.r_[True, tree_of[1:] != tree_of[:-1]]) if len(tree_of) else tree_of
    if not len(roots):
        raise NotEligible("no trees")
    if len(np.unique(tree_of[roots])) != len(roots):
        raise NotEligible("a tree's nodes are not contiguous")
    targets = np.asarray(a["target_ids"], dtype=np.int64)
    if np.any(targets != 0):
        raise NotEligible(f"target id {int(targets[targets != 0][0])}")
    weights = _Index(
        np.asarray(a["target_treeids"], dtype=np.int64),
        np.asarray(a["target_nodeids"], dtype=np.int64),
        "weight",
        duplicates_allowed=True,
    )
    weight_values = np.asarray(a["target_weights"], dtype=np.float64)
    is_leaf = np.fromiter((m == b"LEAF" for m in a["nodes_modes"]), bool, len(node_ids))
    features = np.asarray(a["nodes_featureids"], dtype=np.int64)
    true_ids = np.asarray(a["nodes_truenodeids"], dtype=np.int64)
    false_ids = np.asarray(a["nodes_falsenodeids"], dtype=np.int64)
    # Walk every tree level by level: each visit is (tree t, slot in the complete tree, node).
    visit_t, visit_slot, visit_node = np.arange(len(roots)), np.zeros(len(roots), np.int64), roots
    splits_at: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (t, slot, node) per level
    leaves_at: list[tuple[np.ndarray, np.ndarray, np.ndarray, int]] = []  # (..., level)
    level = 0
    while len(visit_node):
        if level > MAX_DEPTH:
            raise NotEligible(f"a tree deeper than {MAX_DEPTH}")
        leaf = is_leaf[visit_node]
        leaves_at.append((visit_t[leaf], visit_slot[leaf], visit_node[leaf], level))
        t, slot, inner_node = visit_t[~leaf], visit_slot[~leaf], visit_node[~leaf]
        bad_feature = (features[inner_node] < 0) | (features[inner_node] >= n_features)
        true_child = index.find(tree_of[inner_node], true_ids[inner_node])
        false_child = index.find(tree_of[inner_node], false_ids[inner_node])
        bad = bad_feature | (true_child < 0) | (false_child < 0)
        if bad.any():
            i = int(inner_node[bad][0])
            raise NotEligible(f"node {tree_of[i]}-{node_ids[i]}: bad child or feature")
        splits_at.append((t, slot, inner_node))
        visit_t = np.concatenate([t, t])
        visit_slot = np.concatenate([2 * slot + 1, 2 * slot + 2])
        visit_node = np.concatenate([true_child, false_child])
        level += 1
    leaf_t, leaf_slot, leaf_node = (np.concatenate([v[k] for v in leaves_at]) for k in range(3))
    leaf_level = np.concatenate([np.full(len(v[0]), v[3]) for v in leaves_at])
    weight_of, weight_count = weights.first_and_count(tree_of[leaf_node], node_ids[leaf_node])
    if np.any(weight_count != 1):
        raise NotEligible("a leaf without exactly one weight")
    depth = max(1, int(leaf_level.max(initial=0)))
    inner = (1 << depth) - 1
    splits = np.zeros((len(roots), inner), dtype=_SPLIT)
    leaves = np.zeros((len(roots), inner + 1), dtype=np.float32)
    missing = np.zeros((len(roots), inner), dtype=np.uint8)
    tracks = np.zeros(len(node_ids), dtype=np.uint8)
    given = np.asarray(a.get("nodes_missing_value_tracks_true") or [], dtype=np.int64)[
        : len(tracks)
    ]
    tracks[: len(given)] = given == 1
    if splits_at:
        t, slot, node_i = (np.concatenate([v[k] for v in splits_at]) for k in range(3))
        splits["feature"][t, slot] = features[node_i]
        splits["threshold"][t, slot] = np.asarray(a["nodes_values"], dtype=np.float32)[node_i]
        missing[t, slot] = tracks[node_i]
    # a leaf above the deepest level fills every leaf slot under its own slot
    span = np.left_shift(1, depth - leaf_level)
    first = (leaf_slot + 1) * span - 1 - inner
    starts = np.repeat(np.cumsum(span) - span, span)
    column = np.repeat(first, span) + np.arange(int(span.sum())) - starts
    leaves[np.repeat(leaf_t, span), column] = np.repeat(weight_values[weight_of], span)
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

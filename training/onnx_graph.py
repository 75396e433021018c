"""Build the serving graph around a converted model: `features` in, final values out.

The server feeds raw feature rows straight in, so every transform (column selection, signed
log, calibration, category split) is a node here rather than code on the serving side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 15
ML_OPSET = 3
INPUT_NAME = "features"
# The input of an estimator as its converter exports it; wrap_model feeds it from the pre graph.
INNER_INPUT = "inner_features"


@dataclass
class GraphBuilder:
    """Nodes plus their constants, with names unique under `prefix`."""

    prefix: str
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[onnx.TensorProto] = field(default_factory=list)
    _count: int = 0

    def _name(self, hint: str) -> str:
        self._count += 1
        return f"{self.prefix}_{hint}_{self._count}"

    def const(self, values: Sequence[float] | np.ndarray | float, dtype: type = np.float32) -> str:
        name = self._name("const")
        self.initializers.append(numpy_helper.from_array(np.asarray(values, dtype=dtype), name))
        return name

    def op(
        self, op_type: str, inputs: Sequence[str], output: str | None = None, **attrs: object
    ) -> str:
        out = output or self._name(op_type.lower())
        self.nodes.append(
            helper.make_node(op_type, list(inputs), [out], name=self._name(op_type), **attrs)
        )
        return out

    def columns(self, x: str, indices: Sequence[int]) -> str:
        """[N, F] -> [N, len(indices)]."""
        return self.op("Gather", [x, self.const(list(indices), np.int64)], axis=1)

    def column(self, x: str, index: int) -> str:
        """[N, F] -> [N]."""
        return self.op("Gather", [x, self.const(index, np.int64)], axis=1)

    def signed_log(self, x: str) -> str:
        """sign(x) * log(1 + |x|): tames heavy tails and keeps negative values negative."""
        magnitude = self.op("Log", [self.op("Add", [self.op("Abs", [x]), self.const(1.0)])])
        return self.op("Mul", [self.op("Sign", [x]), magnitude])

    def clip(self, x: str, low: float, high: float) -> str:
        return self.op("Clip", [x, self.const(low), self.const(high)])

    def platt(self, probability: str, slope: float, intercept: float, eps: float) -> str:
        """sigmoid(slope * logit(p) + intercept), with p clipped to [eps, 1 - eps]."""
        p = self.clip(probability, eps, 1.0 - eps)
        one_minus = self.op("Sub", [self.const(1.0), p])
        logit = self.op("Sub", [self.op("Log", [p]), self.op("Log", [one_minus])])
        scaled = self.op("Add", [self.op("Mul", [logit, self.const(slope)]), self.const(intercept)])
        return self.op("Sigmoid", [scaled])

    def logit(self, probability: str, eps: float) -> str:
        """log(p / (1 - p)) with p clipped to [eps, 1 - eps]."""
        p = self.clip(probability, eps, 1.0 - eps)
        return self.op(
            "Sub", [self.op("Log", [p]), self.op("Log", [self.op("Sub", [self.const(1.0), p])])]
        )

    def bgnbd_no_purchase(
        self, x: str, columns: Sequence[int], params: Sequence[float], days: float
    ) -> str:
        """BG/NBD P(no purchase in the next `days`) from the raw feature columns (frequency,
        purchase_span_days, tenure_days) -> [N]; the twin of training.btyd.BetaGeo.
        Ratios are taken before logs (float32: one rounding instead of two)."""
        r, alpha, a, b = params
        freq, t_x, tenure = (self.column(x, i) for i in columns)
        repeat = self.op("Max", [self.op("Sub", [freq, self.const(1.0)]), self.const(0.0)])
        age = self.op("Max", [tenure, t_x])
        shape = self.op("Add", [repeat, self.const(r)])
        aged = self.op("Add", [age, self.const(alpha)])
        log_ratio = self.op(
            "Log", [self.op("Div", [aged, self.op("Add", [t_x, self.const(alpha)])])]
        )
        denominator = self.op(
            "Max", [self.op("Add", [repeat, self.const(b - 1.0)]), self.const(1e-12)]
        )
        log_odds = self.op(
            "Add",
            [self.op("Sub", [self.const(float(np.log(a))), self.op("Log", [denominator])]),
             self.op("Mul", [shape, log_ratio])],
        )  # fmt: skip
        odds = self.op(
            "Where",
            [self.op("Greater", [repeat, self.const(0.0)]), self.op("Exp", [log_odds]), self.const(0.0)],
        )  # fmt: skip
        alive = self.op("Div", [self.const(1.0), self.op("Add", [self.const(1.0), odds])])
        later = self.op("Add", [age, self.const(alpha + days)])
        quiet = self.op(
            "Exp", [self.op("Mul", [shape, self.op("Log", [self.op("Div", [aged, later])])])]
        )
        dead = self.op("Sub", [self.const(1.0), alive])
        return self.op("Add", [dead, self.op("Mul", [alive, quiet])])

    def flatten(self, x: str, output: str | None = None) -> str:
        """[N, 1] or [N] -> [N]."""
        return self.op("Reshape", [x, self.const([-1], np.int64)], output)


def signed_log(x: np.ndarray) -> np.ndarray:
    """The numpy twin of GraphBuilder.signed_log, for the native side of parity."""
    return np.sign(x) * np.log1p(np.abs(x))


def wrap_model(
    inner: onnx.ModelProto,
    *,
    inner_input: str,
    n_features: int,
    pre: GraphBuilder,
    pre_output: str,
    post: GraphBuilder,
    outputs: Sequence[tuple[str, int, Sequence[int | None]]],
    doc: str,
) -> bytes:
    """One model: `features` -> pre -> inner -> post -> outputs; checked, serialised."""
    graph = inner.graph
    bridge = helper.make_node("Identity", [pre_output], [inner_input], name="bridge_to_inner")
    nodes = [*pre.nodes, bridge, *graph.node, *post.nodes]
    inputs = [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [None, n_features])]
    outs = [helper.make_tensor_value_info(n, t, list(shape)) for n, t, shape in outputs]
    initializers = [*graph.initializer, *pre.initializers, *post.initializers]
    new_graph = helper.make_graph(nodes, "crm_model", inputs, outs, initializers, doc_string=doc)
    opsets = {o.domain: o.version for o in inner.opset_import}
    opsets[""] = max(opsets.get("", OPSET), OPSET)
    model = helper.make_model(
        new_graph,
        opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())],
        producer_name="crm-serving training",
    )
    model.ir_version = inner.ir_version
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def fold_platt_into_trees(
    inner: onnx.ModelProto, slope: float, intercept: float, output: str, *, sigmoid: bool = True
) -> onnx.ModelProto:
    """A binary tree classifier plus Platt scaling, rewritten as one tree regressor + Sigmoid.

    With a LOGISTIC post-transform, logit(p) is the trees' margin, and Platt's
    sigmoid(slope * logit(p) + intercept) is affine in it: scale the leaf weights by `slope`,
    map the base value to slope * base + intercept. Same numbers (the parity check against
    the native model still decides), 2 nodes instead of ~10, and onnxruntime skips the
    classifier's per-class bookkeeping: a single-row call was ~35% cheaper in a tight loop.
    `output` is the calibrated probability, [N, 1]. Anything but that exact classifier shape
    is refused. With `sigmoid=False`, `output` is the calibrated margin instead (more terms can
    be added before a Sigmoid downstream).
    """
    trees = [n for n in inner.graph.node if n.op_type == "TreeEnsembleClassifier"]
    if len(trees) != 1:
        raise ValueError(f"expected one TreeEnsembleClassifier, found {len(trees)}")
    attrs = {a.name: helper.get_attribute_value(a) for a in trees[0].attribute}
    transform = attrs.get("post_transform", b"NONE")
    if transform != b"LOGISTIC" or len(attrs.get("classlabels_int64s", [])) != 2:
        raise ValueError("expected a binary classifier with a LOGISTIC post-transform")
    if set(attrs["class_ids"]) != {0}:
        raise ValueError("expected one weight column (binary trees score one margin)")
    base = list(attrs.get("base_values") or [0.0])
    if len(base) != 1:
        raise ValueError(f"expected one base value, found {len(base)}")
    regressor = {k: v for k, v in attrs.items() if k.startswith("nodes_")}
    regressor.update(
        n_targets=1,
        target_ids=[0] * len(attrs["class_ids"]),
        target_nodeids=attrs["class_nodeids"],
        target_treeids=attrs["class_treeids"],
        target_weights=[w * slope for w in attrs["class_weights"]],
        base_values=[base[0] * slope + intercept],
        aggregate_function="SUM",
        post_transform="NONE",
    )
    margin = f"{output}_margin" if sigmoid else output
    nodes = [
        helper.make_node(
            "TreeEnsembleRegressor", [trees[0].input[0]], [margin], name="calibrated_trees",
            domain="ai.onnx.ml", **regressor,
        ),
    ]  # fmt: skip
    if sigmoid:
        nodes.append(helper.make_node("Sigmoid", [margin], [output], name="calibrated_sigmoid"))
    outs = [helper.make_tensor_value_info(output, TensorProto.FLOAT, [None, 1])]
    graph = helper.make_graph(nodes, inner.graph.name, list(inner.graph.input), outs)
    model = helper.make_model(graph, opset_imports=list(inner.opset_import))
    model.ir_version = inner.ir_version
    return model

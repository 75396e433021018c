"""The graph after a model's tree ensemble, compiled to a register program _tail.c runs.

For a call of a few rows onnxruntime's fixed cost per run dwarfs the work: the churn model's
rest graph (calibration and the BG/NBD arithmetic, 38 nodes) is a few dozen float32
operations per row. `compile_tail` reads that rest graph (crm.trees.Split.rest) and, when
every node is an elementwise operator on one value per row (or a scalar constant), returns a
`Tail` that computes the model's output from the features and the tree sums in C. Anything
else raises `NotEligible` and the caller keeps onnxruntime.

Arithmetic, comparisons and selections are onnxruntime's to the bit; Log, Exp and Sigmoid use
the C library, which can differ from onnxruntime's kernels in the last float32 place. So a
`Tail` is only used once `agreement` has bounded that difference on probe rows (crm.trees'
probes and the runtime's check at load).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

try:
    from server.models._tail import MAX_REGISTERS, OPCODES, run_tail
except ImportError:  # not built: callers keep onnxruntime
    NATIVE, MAX_REGISTERS, OPCODES = False, 0, {}
else:
    NATIVE = True

# The largest |difference| from onnxruntime's own answer to a call of the same rows that a
# Tail may show on the probe: onnxruntime's answers for one row already move by up to ~3e-7
# with the size of the call they are in (benchmarks/README, single customers).
TOLERANCE = 1e-6
# how many inputs each ONNX operator _tail.c computes takes (its OPCODES name them)
_ARITY = {
    **dict.fromkeys(("Add", "Sub", "Mul", "Div", "Max", "Min", "Greater", "Less"), 2),
    **dict.fromkeys(("Log", "Exp", "Sigmoid", "Neg"), 1),
    "Where": 3,
    "Clip": 3,
}
_ALIASES = ("Identity",)


class NotEligible(ValueError):
    """The rest graph holds something the tail program does not compute; use onnxruntime."""


@dataclass(frozen=True)
class Tail:
    """A compiled rest graph: `run(features, sums)` gives the model's one output."""

    output_name: str
    output_rank: int  # 1: [N], 2: [N, 1], as onnxruntime returns it
    program: np.ndarray  # int32 [K, 5]
    constants: np.ndarray  # float32 [C]
    registers: int
    output: int
    n_features: int

    def __post_init__(self) -> None:
        for array in (self.program, self.constants):  # shared by every scoring thread
            array.flags.writeable = False

    def run(self, features: np.ndarray, sums: np.ndarray) -> dict[str, np.ndarray]:
        """float32 features [N, F] and tree sums [N] or [N, 1] -> {output: float32}."""
        rows = features.shape[0]
        out = np.empty(rows, dtype=np.float32)
        run_tail(
            np.ascontiguousarray(features, dtype=np.float32),
            np.ascontiguousarray(sums, dtype=np.float32).reshape(-1),
            out, self.program, self.constants, self.n_features, self.registers, self.output,
        )  # fmt: skip
        return {self.output_name: out if self.output_rank == 1 else out.reshape(rows, 1)}


def compile_tail(rest: bytes, features: str, sums: str, n_features: int) -> Tail:
    """The Tail of rest graph `rest` (model bytes) whose inputs are `features` [N, F] and the
    tree sums `sums` [N, 1]; NotEligible if any node is not one we compute."""
    if not NATIVE:
        raise NotEligible("server.models._tail is not built")
    graph = onnx.load_from_string(rest).graph
    if len(graph.output) != 1:
        raise NotEligible(f"{len(graph.output)} outputs (the tail computes one)")
    initializers = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    # pass 1 reads the nodes: the steps and each value's rank (1: [N]; 2: [N, 1])
    steps: list[tuple[int, str, list[str], int]] = []  # (opcode, output, inputs, column)
    ranks: dict[str, int] = {sums: 2}
    for node in graph.node:
        op, ins, out = node.op_type, list(node.input), list(node.output)
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if len(out) != 1:
            raise NotEligible(f"{op} with {len(out)} outputs")
        if op in _ALIASES or (op == "Reshape" and _flattens(initializers, ins, ranks)):
            if ins[0] not in ranks:
                raise NotEligible(f"{op} of {ins[0]!r}")
            ranks[out[0]] = ranks[ins[0]] if op in _ALIASES else 1
            steps.append((-1, out[0], ins[:1], 0))  # an alias: no step
            continue
        if op == "Gather":
            column = _column(initializers, ins, attrs, features, n_features)
            ranks[out[0]] = 1
            steps.append((OPCODES["load"], out[0], [], column))
            continue
        if attrs:
            raise NotEligible(f"{op} with attributes {sorted(attrs)}")
        if op not in _ARITY or len(ins) != _ARITY[op]:
            raise NotEligible(f"{op} with {len(ins)} inputs")
        row_ranks = {ranks[i] for i in ins if i in ranks}
        for i in ins:
            if i not in ranks and i not in initializers:
                raise NotEligible(f"{op} reads {i!r}, not one value per row")
        if len(row_ranks) > 1:
            raise NotEligible(f"{op} mixes [N] and [N, 1] values")
        if not row_ranks:
            raise NotEligible(f"{op} of constants only")
        ranks[out[0]] = row_ranks.pop()
        steps.append((OPCODES[op], out[0], ins, 0))
    output = graph.output[0].name
    if output not in ranks:
        raise NotEligible(f"output {output!r} is not computed per row")
    if graph.output[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise NotEligible("the output is not float32")

    # pass 2 numbers the registers: the constants, then the sums, then one per computed value
    register: dict[str, int] = {}
    constants: list[float] = []
    for name in dict.fromkeys(i for _, _, ins, _ in steps for i in ins if i in initializers):
        array = initializers[name]
        if array.size != 1 or array.dtype != np.float32 or array.ndim > 1:
            raise NotEligible(
                f"constant {name!r} is {array.dtype}{array.shape}, not a float32 scalar"
            )
        register[name] = len(constants)
        constants.append(float(array.reshape(-1)[0]))
    register[sums] = len(constants)
    registers = len(constants) + 1
    program: list[tuple[int, int, int, int, int]] = []
    for code, out, ins, column in steps:
        if code < 0:  # an alias names its input's register
            register[out] = register[ins[0]]
            continue
        operands = [column, 0, 0] if code == OPCODES["load"] else [register[i] for i in ins]
        register[out] = registers
        program.append((code, registers, *operands, *[0] * (3 - len(operands))))
        registers += 1
    if registers > MAX_REGISTERS:
        raise NotEligible(f"{registers} registers (_tail.c holds {MAX_REGISTERS})")
    return Tail(
        output_name=output,
        output_rank=ranks[output],
        program=np.array(program, dtype=np.int32).reshape(-1, 5),
        constants=np.array(constants, dtype=np.float32),
        registers=registers,
        output=register[output],
        n_features=n_features,
    )


def _flattens(initializers: dict[str, np.ndarray], ins: list[str], ranks: dict[str, int]) -> bool:
    """Reshape of an [N, 1] value to [-1]: the same values as [N]."""
    if len(ins) != 2 or ins[1] not in initializers or ranks.get(ins[0]) != 2:
        return False
    return initializers[ins[1]].tolist() == [-1]


def _column(
    initializers: dict[str, np.ndarray],
    ins: list[str],
    attrs: dict[str, object],
    features: str,
    n_features: int,
) -> int:
    """Gather(features, scalar k, axis=1): column k as one value per row."""
    if len(ins) != 2 or ins[0] != features or ins[1] not in initializers or attrs != {"axis": 1}:
        raise NotEligible("Gather other than one column of the features")
    index = initializers[ins[1]]
    if index.ndim != 0 or index.dtype.kind != "i" or not 0 <= int(index) < n_features:
        raise NotEligible(f"Gather index {index.tolist()} is not one column")
    return int(index)


def agreement(got: np.ndarray, want: np.ndarray) -> float:
    """The largest difference between two answers, relative to the value for |values| above 1
    and absolute below (probabilities and amounts alike): inf if shapes, dtypes or NaNs differ."""
    if got.dtype != want.dtype or got.shape != want.shape:
        return float("inf")
    a, b = got.astype(np.float64), want.astype(np.float64)
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        return float("inf")
    scale = np.maximum(np.abs(b), 1.0)
    return float(np.nanmax(np.abs(a - b) / scale, initial=0.0))

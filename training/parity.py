"""The parity gate: the exported graph must reproduce the native model on held-out rows.

Both ways the server can score it are checked: onnxruntime on the whole graph, and, when the
graph is one the server's tree evaluator takes (crm.trees), the trees in C with the rest in
onnxruntime; that second result must also be bitwise equal to onnxruntime's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

from crm import trees
from training.onnx_graph import INPUT_NAME


class ParityError(RuntimeError):
    """An export disagrees with its native model beyond the stated tolerance."""


@dataclass(frozen=True)
class ParityResult:
    output: str
    rows: int
    max_abs_diff: float
    max_rel_diff: float
    tolerance: float
    rtol: float
    mismatches: int
    passed: bool
    # crm.trees' result for the same rows, when the graph is one it takes; None otherwise
    tree_evaluator: ParityResult | None = None
    tree_evaluator_equals_onnxruntime: bool | None = None

    def failure(self) -> str:
        """What failed, for the gate's message ("" when it passed)."""
        problems = []
        if self.mismatches:
            problems.append(
                f"{self.mismatches} of {self.rows} rows beyond tolerance {self.tolerance:g} + "
                f"{self.rtol:g}*|native| (max |diff| {self.max_abs_diff:.3g})"
            )
        if self.tree_evaluator is not None and self.tree_evaluator.mismatches:
            problems.append(f"tree evaluator: {self.tree_evaluator.failure()}")
        if self.tree_evaluator_equals_onnxruntime is False:
            problems.append("tree evaluator not bitwise equal to onnxruntime")
        return "; ".join(problems)

    def as_manifest(self) -> dict[str, Any]:
        checked: dict[str, Any] = {}
        if self.tree_evaluator is not None:
            own = self.tree_evaluator.as_manifest()
            checked["tree_evaluator"] = {
                **{k: v for k, v in own.items() if k != "rule"},
                "bitwise_equal_to_onnxruntime": self.tree_evaluator_equals_onnxruntime,
                "rule": "crm.trees (trees in C, rest in onnxruntime): the same rule, and "
                "bitwise equal to onnxruntime on every row",
            }
        return {
            "output": self.output,
            "rows": self.rows,
            "max_abs_diff": self.max_abs_diff,
            "max_rel_diff": self.max_rel_diff,
            "tolerance": self.tolerance,
            "rtol": self.rtol,
            "mismatches": self.mismatches,
            "passed": self.passed,
            "rule": "|onnx - native| <= tolerance + rtol * |native| on every held-out value",
            **checked,
        }


def _session(model: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def run_onnx(model: bytes, rows: np.ndarray, output: str) -> np.ndarray:
    session = _session(model)
    return session.run([output], {INPUT_NAME: np.ascontiguousarray(rows, dtype=np.float32)})[0]


def run_tree_evaluator(model: bytes, rows: np.ndarray, output: str) -> np.ndarray | None:
    """`output` as the server's tree evaluator computes it; None when it would not take the
    graph (no eligible tree ensemble, or crm._trees not built)."""
    try:
        scorer = trees.scorer(model, _session)
    except trees.NotEligible:
        return None
    return scorer.run(np.ascontiguousarray(rows, dtype=np.float32))[output]


def check_parity(
    model: bytes,
    rows: np.ndarray,
    native: np.ndarray,
    output: str,
    *,
    tolerance: float,
    rtol: float = 0.0,
) -> ParityResult:
    """Compare onnxruntime's `output` (and the tree evaluator's, when it takes the graph)
    with the native predictions for the same rows."""
    got = run_onnx(model, rows, output)
    result = _compare(got, native, output, rows=len(rows), tolerance=tolerance, rtol=rtol)
    by_trees = run_tree_evaluator(model, rows, output)
    if by_trees is None:
        return result
    evaluator = _compare(by_trees, native, output, rows=len(rows), tolerance=tolerance, rtol=rtol)
    equal = by_trees.shape == got.shape and bool(np.array_equal(by_trees, got, equal_nan=True))
    return dataclasses.replace(
        result,
        passed=result.passed and evaluator.passed and equal,
        tree_evaluator=evaluator,
        tree_evaluator_equals_onnxruntime=equal,
    )


def _compare(
    got: np.ndarray, native: np.ndarray, output: str, *, rows: int, tolerance: float, rtol: float
) -> ParityResult:
    want = np.asarray(native)
    if got.size != want.size:
        return ParityResult(
            output, rows, float("inf"), float("inf"), tolerance, rtol, want.size, False
        )
    got = got.reshape(want.shape).astype(np.float64)
    want = want.astype(np.float64)
    diff = np.abs(got - want)
    diff = np.where(np.isfinite(diff), diff, np.inf)
    allowed = tolerance + rtol * np.abs(want)
    mismatches = int((diff > allowed).sum())
    rel = diff / np.maximum(np.abs(want), 1e-12)
    return ParityResult(
        output=output,
        rows=rows,
        max_abs_diff=float(diff.max(initial=0.0)),
        max_rel_diff=float(rel.max(initial=0.0)),
        tolerance=tolerance,
        rtol=rtol,
        mismatches=mismatches,
        passed=mismatches == 0,
    )

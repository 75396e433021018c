"""The parity gate: the exported graph must reproduce the native model on held-out rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

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

    def as_manifest(self) -> dict[str, Any]:
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
        }


def run_onnx(model: bytes, rows: np.ndarray, output: str) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    return session.run([output], {INPUT_NAME: np.ascontiguousarray(rows, dtype=np.float32)})[0]


def check_parity(
    model: bytes,
    rows: np.ndarray,
    native: np.ndarray,
    output: str,
    *,
    tolerance: float,
    rtol: float = 0.0,
) -> ParityResult:
    """Compare onnxruntime's `output` with the native predictions for the same rows."""
    got = run_onnx(model, rows, output)
    want = np.asarray(native)
    if got.size != want.size:
        return ParityResult(
            output, len(rows), float("inf"), float("inf"), tolerance, rtol, want.size, False
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
        rows=len(rows),
        max_abs_diff=float(diff.max(initial=0.0)),
        max_rel_diff=float(rel.max(initial=0.0)),
        tolerance=tolerance,
        rtol=rtol,
        mismatches=mismatches,
        passed=mismatches == 0,
    )

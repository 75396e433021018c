"""The one place that talks to onnxruntime: a session per model version, explicit threads.

A model whose bulk is one tree ensemble is scored with the trees in C (crm.trees) and the rest
of its graph in onnxruntime, once a probe at load shows the outputs bitwise equal to the
onnxruntime session's; otherwise (or when crm._trees is not built) onnxruntime runs it all.
A call of fewer than TREES_FROM_ROWS rows to such a model runs the rest graph in C too
(tail.py) when it is elementwise and a probe at load keeps it within tail.TOLERANCE of
onnxruntime's answers to one-row calls; such calls cost a few microseconds, so the executor
runs them at once instead of batching them (`unbatched_below`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from crm import trees
from crm.artifacts import MODEL_FILE, ArtifactError
from server.metrics import ServerMetrics
from server.models import tail

log = logging.getLogger("server.models.runtime")
ENGINE_TREES = "crm.trees"
TREES_FROM_ROWS = 8  # smaller calls: the trees and the tail in C, or all in onnxruntime
ENGINE_ORT = "onnxruntime"


def session_options(threads: int) -> ort.SessionOptions:
    """How every model runs: `threads` intra-op threads, no inter-op pool, all graph
    optimisations. The benchmarks' references use the same, so they compare like with like."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


def new_session(model: str | bytes, threads: int) -> ort.InferenceSession:
    """A CPU session of `model` (a path or the bytes of one) with session_options(threads)."""
    return ort.InferenceSession(model, session_options(threads), providers=["CPUExecutionProvider"])


class OnnxModel:
    """A loaded, checked ONNX model: one float32 input `features` [N, F], named outputs."""

    def __init__(
        self,
        version_dir: Path,
        manifest: Mapping[str, Any],
        threads: int,
        metrics: ServerMetrics,
        *,
        tree_evaluator: bool = True,
    ) -> None:
        try:
            self.session = new_session(str(version_dir / MODEL_FILE), threads)
        except Exception as err:  # onnxruntime raises its own exception types
            raise ArtifactError(
                f"{version_dir}: onnxruntime cannot load the model: {err}"
            ) from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ArtifactError(f"{version_dir}: expected one input, found {len(inputs)}")
        self.input_name: str = inputs[0].name
        self.feature_names: tuple[str, ...] = tuple(manifest.get("features") or ())
        if not self.feature_names:
            raise ArtifactError(f"{version_dir}: manifest lists no features")
        width = inputs[0].shape[-1] if inputs[0].shape else None
        if isinstance(width, int) and width != len(self.feature_names):
            raise ArtifactError(
                f"{version_dir}: model takes {width} features, manifest lists {len(self.feature_names)}"
            )
        self.output_names: tuple[str, ...] = tuple(o.name for o in self.session.get_outputs())
        labels = (str(manifest["name"]), str(manifest["version"]))
        self._seconds = metrics.inference_seconds.labels(*labels)
        self._rows = metrics.rows_scored.labels(*labels)
        self._threads = threads
        self._trees, self._tail = _tree_scorer(
            self, version_dir, threads, labels, enabled=tree_evaluator
        )
        self.engine = ENGINE_TREES if self._trees else ENGINE_ORT
        # calls of fewer rows cost a few microseconds in C: merging them would cost more
        self.unbatched_below = TREES_FROM_ROWS if self._tail else 0
        self.run(np.zeros((1, len(self.feature_names)), dtype=np.float32))  # smoke test

    def run(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """Score a float32 [N, F] matrix in manifest feature order. A call of fewer than
        TREES_FROM_ROWS rows runs in C when the model's tail is (7 against 31 us for one churn
        row); else, with one onnxruntime thread, the whole graph in onnxruntime: the same bits
        as the evaluator (the probe at load held them equal), and one session call instead of
        two (measured on the churn model: 20 against 27 us for one row; even at 8 rows)."""
        t0 = time.perf_counter()
        rows = features.shape[0]
        if self._trees and self._tail and rows < TREES_FROM_ROWS:
            outputs = self._tail.run(features, self._trees.split.ensemble.predict(features))
        elif self._trees and (rows >= TREES_FROM_ROWS or self._threads > 1):
            outputs = self._trees.run(features)
        else:
            outputs = self.whole(self.session, features)
        self._seconds.observe(time.perf_counter() - t0)
        self._rows.inc(features.shape[0])
        return outputs

    def whole(self, session: ort.InferenceSession, features: np.ndarray) -> dict[str, np.ndarray]:
        """The whole graph in onnxruntime `session`, outputs by name."""
        outputs = session.run(None, {self.input_name: features})
        return dict(zip(self.output_names, outputs, strict=True))


def _tree_scorer(
    model: OnnxModel, version_dir: Path, threads: int, labels: tuple[str, str], *, enabled: bool
) -> tuple[trees.TreeScorer | None, tail.Tail | None]:
    """The tree evaluator for `model` if its graph is eligible and a deterministic probe
    (thresholds hit exactly, one float32 either side, NaN) gives bitwise the outputs of
    onnxruntime on one thread; None, with a log line saying why, otherwise. With it, the C
    tail for small calls when `_small_call_tail` accepts one.

    One thread, whatever `threads`: with more, onnxruntime's tree sums for a call of over 50
    rows can differ in the last float32 place from its one-thread sums (measured: 518 of
    10,000 churn probabilities, 2 threads against 1). The evaluator always adds in the
    one-thread order, so a server with any --ort-threads and crm-batch (one thread) give the
    same bits."""
    where = {"model": labels[0], "version": labels[1]}
    if not enabled:
        log.info(
            "onnxruntime scores the model: tree evaluator off",
            extra={**where, "engine": ENGINE_ORT},
        )
        return None, None
    try:
        raw = (version_dir / MODEL_FILE).read_bytes()
        scorer = trees.scorer(raw, lambda rest: new_session(rest, threads))
        probe = trees.probe_rows(scorer.split.ensemble)
        reference = model.session if threads == 1 else new_session(raw, 1)
        differs = trees.disagreement(scorer.run(probe), model.whole(reference, probe))
    except trees.NotEligible as why:
        log.info("onnxruntime scores the model: %s", why, extra={**where, "engine": ENGINE_ORT})
        return None, None
    except Exception as err:  # a fallback: onnx and onnxruntime raise their own types
        log.warning(
            "tree evaluator failed to load, onnxruntime scores the model: %s",
            err,
            extra={**where, "engine": ENGINE_ORT},
        )
        return None, None
    if differs:
        log.warning(
            "tree evaluator disagrees with onnxruntime on the probe, onnxruntime scores the "
            "model: %s",
            differs,
            extra={**where, "engine": ENGINE_ORT},
        )
        return None, None
    log.info(
        "tree evaluator scores the model (%d trees, depth %d, probe bitwise equal)",
        scorer.split.ensemble.trees,
        scorer.split.ensemble.depth,
        extra={**where, "engine": ENGINE_TREES},
    )
    return scorer, _small_call_tail(model, scorer, reference, probe, where)


def _small_call_tail(
    model: OnnxModel,
    scorer: trees.TreeScorer,
    reference: ort.InferenceSession,
    probe: np.ndarray,
    where: dict[str, str],
) -> tail.Tail | None:
    """The rest graph in C for calls under TREES_FROM_ROWS rows, if it compiles and every
    probe row, alone, lands within tail.TOLERANCE of onnxruntime's one-row answer (the
    reference a small call would otherwise get); None, with a log line saying why, otherwise."""
    split = scorer.split
    try:
        compiled = tail.compile_tail(
            split.rest, split.input_name, split.trees_input, split.ensemble.n_features
        )
    except tail.NotEligible as why:
        log.info("onnxruntime runs the graph after the trees: %s", why, extra=where)
        return None
    # the tail computes each row alone, so one call scores the whole probe as row-by-row
    # calls would; onnxruntime's reference is a one-row call per probe row
    got = compiled.run(probe, split.ensemble.predict(probe))
    worst = float("inf")
    if model.output_names == tuple(got):
        (name,) = model.output_names
        want = np.concatenate(
            [model.whole(reference, probe[row : row + 1])[name] for row in range(len(probe))]
        )
        worst = tail.agreement(got[name], want)
    if worst > tail.TOLERANCE:
        log.warning(
            "onnxruntime runs the graph after the trees: the C tail differs by %.3g on the probe"
            " (tolerance %g)",
            worst,
            tail.TOLERANCE,
            extra=where,
        )
        return None
    log.info(
        "calls under %d rows run the graph after the trees in C (%d steps; probe within %.3g"
        " of onnxruntime's one-row answers)",
        TREES_FROM_ROWS,
        len(compiled.program),
        worst,
        extra=where,
    )
    return compiled

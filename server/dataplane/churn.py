"""The churn handler: probability, risk level, high value and drivers; live stats and alerts."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from crm.v1 import common_pb2
from server.dataplane.alerts import AlertHub, Scored
from server.dataplane.base import ModelId, Plane, ScoringHandler
from server.dataplane.inputs import Resolved
from server.dataplane.risk_rules import risk_levels
from server.dataplane.score_stats import ScoreStats
from server.errors import Unavailable
from server.freshness.state import Change
from server.models.artifact import LoadedArtifact
from server.models.snapshot import FeatureSnapshot
from server.models.specs import ChurnSpec

log = logging.getLogger("crm.churn")
TOP_DRIVERS = 3
HIGH_VALUE_QUANTILE = 80.0  # net spend at or above this percentile of the snapshot
_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


@dataclass(frozen=True)
class Driver:
    feature: str
    value: float
    contribution: float  # change in log-odds when the feature takes its population mean


@dataclass(frozen=True)
class ChurnScores:
    """Scores of one request, columnar: row k of the arrays is request row `rows.scored[k]`."""

    model: ModelId
    horizon_days: int
    rows: Resolved
    probabilities: np.ndarray  # float64 [k]
    levels: np.ndarray  # RiskLevel values [k]
    high_value: np.ndarray  # bool [k]: net spend in the snapshot's top quintile
    drivers: list[list[Driver]] | None  # per scored row, when asked for


@dataclass(frozen=True)
class ChurnStats:
    model: ModelId
    thresholds: tuple[float, float, float]
    live: ScoreStats
    snapshot: ScoreStats | None


class ChurnHandler(ScoringHandler):
    model_name = "churn"

    def __init__(self, plane: Plane, hub: AlertHub | None = None) -> None:
        super().__init__(plane)
        self.hub = hub or AlertHub()
        self.live = ScoreStats()

    def close(self) -> None:
        self.hub.close()

    def predict(
        self,
        customers: Sequence[common_pb2.CustomerInput],
        batch: common_pb2.FeatureMatrix | None,
        *,
        include_drivers: bool = False,
        with_high_value: bool = False,
        version: int = 0,
        timeout: float | None = None,
        as_of_ns: int | None = None,
    ) -> ChurnScores:
        """Scores of `customers` or the columnar `batch`. A columnar reply carries no
        recommendations, so it skips the high-value flag they need unless `with_high_value`
        (bulk scoring, which writes recommendations for columnar rows). Customers by id are
        scored as of `as_of_ns` when given, else as of the end of today."""
        with self.plane.counted():
            artifact = self.model(version)
            spec: ChurnSpec = artifact.spec
            snapshot = self.plane.snapshot()  # once per call: rows, high value, drivers agree
            by_id = snapshot if as_of_ns is None else self.plane.snapshot_at(customers, as_of_ns)
            rows = self.resolve(artifact, customers, batch, by_id)
            out = self.score(artifact, rows, timeout)
            probs = np.asarray(out.get("probability", ()), dtype=np.float64).reshape(-1)
            levels = risk_levels(probs, spec.risk_thresholds)
            self._publish(artifact, rows, probs, levels)
            columnar = batch is not None
            return ChurnScores(
                ModelId.of(artifact),
                spec.horizon_days,
                rows,
                probs,
                levels,
                self._high_value(artifact, rows, snapshot)
                if with_high_value or not columnar
                else np.zeros(0, bool),
                self._drivers(artifact, rows.matrix, probs, snapshot)
                if include_drivers and not columnar
                else None,
            )

    def _publish(
        self, artifact: LoadedArtifact, rows: Resolved, probs: np.ndarray, levels: np.ndarray
    ) -> None:
        every_row = len(rows.scored) == rows.n  # no per-row errors: k == i
        ids = rows.customer_ids if every_row else [rows.customer_ids[i] for i in rows.scored]
        keys = rows.request_keys if every_row else [rows.request_keys[i] for i in rows.scored]
        self.live.add(probs, levels)
        model = (artifact.name, artifact.version)
        self.hub.publish(Scored(probs, levels, ids, keys, model, time.time_ns()))

    def _high_value(
        self, artifact: LoadedArtifact, rows: Resolved, snapshot: FeatureSnapshot | None
    ) -> np.ndarray:
        column = artifact.spec.monetary_column
        matrix = rows.matrix
        if column is None or snapshot is None or "monetary" not in snapshot.feature_names:
            return np.zeros(matrix.shape[0], dtype=bool)
        cut = self.cache.get(
            ("high_value", snapshot.version),
            lambda: float(np.percentile(snapshot.matrix(["monetary"]), HIGH_VALUE_QUANTILE)),
        )
        return matrix[:, column] >= cut

    def _drivers(
        self,
        artifact: LoadedArtifact,
        matrix: np.ndarray,
        probs: np.ndarray,
        snapshot: FeatureSnapshot | None,
    ) -> list[list[Driver]]:
        """Mean-occlusion attributions: the change in log-odds when one feature is replaced by
        its population mean (from the feature snapshot). Works for any model; positive raises
        risk. Costs F extra rows per customer, so only on request."""
        names = artifact.model.feature_names
        if snapshot is None:
            return [[] for _ in range(matrix.shape[0])]
        means = self.cache.get(
            ("means", snapshot.version, names), lambda: snapshot.matrix(names).mean(axis=0)
        )
        n, f = matrix.shape
        if n == 0:
            return []
        occluded = np.repeat(matrix, f, axis=0).reshape(n, f, f)
        occluded[:, np.arange(f), np.arange(f)] = means.astype(np.float32)
        out = self.plane.run(artifact, occluded.reshape(n * f, f), None)
        base = _logit(probs)[:, None]
        contrib = base - _logit(np.asarray(out["probability"], dtype=np.float64).reshape(n, f))
        result = []
        for row in range(n):
            top = np.argsort(-np.abs(contrib[row]), kind="stable")[:TOP_DRIVERS]
            result.append(
                [
                    Driver(names[j], float(matrix[row, j]), float(contrib[row, j]))
                    for j in top
                    if abs(contrib[row, j]) > 0
                ]
            )
        return result

    def on_change(self, change: Change) -> None:
        """A freshness listener: customers whose risk level rose through an ingested line or
        the daily ageing go to the alert hub, with drivers, though nobody scored them."""
        try:
            artifact = self.model()
        except Unavailable:
            return
        after = change.after
        ids = change.customer_ids if change.customer_ids is not None else list(after.customer_ids)
        if not ids:
            return
        started = time.perf_counter()
        new_out = self.snapshot_outputs(artifact, after)
        old_out = self.snapshot_outputs(artifact, change.before)
        if new_out is None:
            return
        thresholds = artifact.spec.risk_thresholds
        rows = np.array([after.row_of(c) for c in ids], dtype=np.int64)
        probs = np.asarray(new_out[1]["probability"], np.float64).reshape(-1)[rows]
        levels = risk_levels(probs, thresholds)
        before = np.array([change.before.row_of(c) for c in ids], dtype=object)
        known = np.array([r is not None for r in before], dtype=bool)
        old_levels = np.zeros(len(ids), dtype=levels.dtype)
        if old_out is not None and known.any():
            old_rows = before[known].astype(np.int64)
            old = np.asarray(old_out[1]["probability"], np.float64).reshape(-1)[old_rows]
            old_levels[known] = risk_levels(old, thresholds)
        rising = np.flatnonzero(levels > old_levels)
        if not rising.size:
            return
        names = artifact.model.feature_names
        drivers = self._drivers(artifact, after.matrix(names, rows[rising]), probs[rising], after)
        self.hub.publish_here(
            Scored(
                probs[rising], levels[rising], [ids[k] for k in rising], [""] * rising.size,
                (artifact.name, artifact.version), change.at_ns, change.reason,
                old_levels[rising],
                [tuple((d.feature, d.value, d.contribution) for d in row) for row in drivers],
                after.as_of_ns or 0,
            )
        )  # fmt: skip
        log.info(
            "risk rises published",
            extra={
                "reason": change.reason, "customers": len(ids), "rises": int(rising.size),
                "seconds": round(time.perf_counter() - started, 3),
            },
        )  # fmt: skip

    def stats(self) -> ChurnStats:
        artifact = self.model()
        thresholds = artifact.spec.risk_thresholds
        snapshot_stats = None
        scored = self.snapshot_outputs(artifact)
        if scored is not None:
            probs = np.asarray(scored[1]["probability"], dtype=np.float64).reshape(-1)
            snapshot_stats = ScoreStats()
            snapshot_stats.add(probs, risk_levels(probs, thresholds))
        return ChurnStats(ModelId.of(artifact), thresholds, self.live, snapshot_stats)

"""ChurnService: churn probability, risk level, recommendations and drivers; bulk streaming;
live alerts; statistics."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import grpc
import numpy as np

from crm.v1 import churn_pb2, churn_pb2_grpc, common_pb2
from server.churn.alerts import AlertHub, to_message
from server.churn.rules import recommendations, risk_levels, thresholds_from
from server.churn.stats import ScoreStats
from server.errors import FieldViolation, InvalidArgument
from server.executor import ModelExecutor
from server.inputs import InputResolver
from server.registry import LoadedArtifact, ModelRegistry
from server.services.scoring import ScoringService, batch_of, model_ref, serving_section
from server.snapshot import FeatureSnapshot

TOP_DRIVERS = 3
HIGH_VALUE_QUANTILE = 80.0  # net spend at or above this percentile of the snapshot
_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def _high_value_rule(
    names: Sequence[str], snapshot: FeatureSnapshot | None
) -> tuple[int, float] | None:
    """(monetary's column, the snapshot's top-quintile net spend), or None when either is
    missing: then nobody counts as high value."""
    if "monetary" not in names or snapshot is None or "monetary" not in snapshot.feature_names:
        return None
    cut = float(np.percentile(snapshot.matrix(["monetary"]), HIGH_VALUE_QUANTILE))
    return list(names).index("monetary"), cut


Reply = TypeVar("Reply", churn_pb2.PredictChurnResponse, churn_pb2.StreamPredictChurnResponse)


class ChurnServicer(churn_pb2_grpc.ChurnServiceServicer, ScoringService):
    model_name = "churn"

    def __init__(
        self,
        registry: ModelRegistry,
        executor: ModelExecutor,
        resolver: InputResolver,
        stream_pool: ThreadPoolExecutor,
        hub: AlertHub | None = None,
    ) -> None:
        ScoringService.__init__(self, registry, executor, resolver, stream_pool)
        self.hub = hub or AlertHub()
        self.live = ScoreStats()

    def close(self) -> None:
        self.hub.close()

    # -- scoring ---------------------------------------------------------------------------
    def _predict(
        self,
        response: Reply,
        customers: Sequence[common_pb2.CustomerInput],
        batch: common_pb2.FeatureMatrix | None,
        *,
        include_drivers: bool,
        version: int,
        context: grpc.ServicerContext,
    ) -> Reply:
        """Fill the fields unary and streamed churn replies share. Predictions are added in
        place: building them apart and extending the reply copied every one again."""
        if version < 0:
            raise InvalidArgument.field("model_version", "must be >= 0 (0 = serving)")
        artifact = self.model(version)
        snapshot = self.snapshot()  # once per call: resolution, high value and drivers agree
        resolved = self.resolve(artifact, customers, batch, snapshot)
        probs = np.zeros(0, dtype=np.float64)
        if resolved.matrix.shape[0]:
            out = self.score(artifact, resolved, context)
            probs = np.asarray(out["probability"], dtype=np.float64).reshape(-1)
        levels = risk_levels(probs, self._thresholds(artifact))
        every_row = len(resolved.scored) == resolved.n  # no per-row errors: k == i
        ids = (
            resolved.customer_ids
            if every_row
            else [resolved.customer_ids[i] for i in resolved.scored]
        )
        keys = (
            resolved.request_keys
            if every_row
            else [resolved.request_keys[i] for i in resolved.scored]
        )
        self.live.add(probs, levels)
        self.hub.publish(
            probs, levels, customer_ids=ids, request_keys=keys,
            model=(artifact.name, artifact.version), scored_at_ns=time.time_ns(),
        )  # fmt: skip
        response.model.CopyFrom(model_ref(artifact))
        response.horizon_days = int(serving_section(artifact).get("churn_days", 0))
        if batch is not None:
            response.columns.SetInParent()  # present even with no row (clients test it)
            response.columns.probabilities.extend(probs.astype(np.float32).tolist())
            response.columns.risk_levels.extend(levels.tolist())
            return response
        high_value = self._high_value(artifact, resolved.matrix, snapshot).tolist()
        drivers = (
            self._drivers(artifact, resolved.matrix, probs, snapshot) if include_drivers else None
        )
        probabilities, level_list = probs.tolist(), levels.tolist()
        position = None if every_row else {int(i): k for k, i in enumerate(resolved.scored)}
        add = response.predictions.add
        for i in range(resolved.n):
            k = i if position is None else position.get(i)
            if k is None:
                add(
                    index=i,
                    customer_id=resolved.customer_ids[i],
                    request_key=resolved.request_keys[i],
                    error=resolved.errors[i],
                )
            else:
                level = level_list[k]
                add(
                    index=i,
                    customer_id=resolved.customer_ids[i],
                    request_key=resolved.request_keys[i],
                    probability=probabilities[k],
                    risk_level=level,
                    recommendations=recommendations(level, high_value[k]),
                    drivers=None if drivers is None else drivers[k],
                )
        return response

    def _thresholds(self, artifact: LoadedArtifact) -> np.ndarray:
        """The model's risk thresholds (t_medium, t_high, t_critical), read once per version."""
        return self.cache.get(
            ("thresholds", artifact.name, artifact.version),
            lambda: np.asarray(thresholds_from(serving_section(artifact))),
        )

    def _high_value(
        self, artifact: LoadedArtifact, matrix: np.ndarray, snapshot: FeatureSnapshot | None
    ) -> np.ndarray:
        version = None if snapshot is None else snapshot.version
        rule = self.cache.get(
            ("high_value", artifact.name, artifact.version, version),
            lambda: _high_value_rule(artifact.model.feature_names, snapshot),
        )
        if rule is None:
            return np.zeros(matrix.shape[0], dtype=bool)
        column, cut = rule
        return matrix[:, column] >= cut

    def _drivers(
        self,
        artifact: LoadedArtifact,
        matrix: np.ndarray,
        probs: np.ndarray,
        snapshot: FeatureSnapshot | None,
    ) -> list[list[churn_pb2.ChurnDriver]]:
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
        occluded = np.repeat(matrix, f, axis=0).reshape(n, f, f)
        occluded[:, np.arange(f), np.arange(f)] = means.astype(np.float32)
        out = self.run(artifact, occluded.reshape(n * f, f), None)
        base = _logit(probs)[:, None]
        contrib = base - _logit(np.asarray(out["probability"], dtype=np.float64).reshape(n, f))
        result = []
        for row in range(n):
            top = np.argsort(-np.abs(contrib[row]), kind="stable")[:TOP_DRIVERS]
            result.append(
                [
                    churn_pb2.ChurnDriver(
                        feature=names[j],
                        value=float(matrix[row, j]),
                        contribution=float(contrib[row, j]),
                    )
                    for j in top
                    if abs(contrib[row, j]) > 0
                ]
            )
        return result

    # -- RPCs ------------------------------------------------------------------------------
    def PredictChurn(
        self, request: churn_pb2.PredictChurnRequest, context: grpc.ServicerContext
    ) -> churn_pb2.PredictChurnResponse:
        return self._predict(
            churn_pb2.PredictChurnResponse(), request.customers, batch_of(request),
            include_drivers=request.include_drivers, version=request.model_version,
            context=context,
        )  # fmt: skip

    def StreamPredictChurn(
        self,
        request_iterator: Iterator[churn_pb2.StreamPredictChurnRequest],
        context: grpc.ServicerContext,
    ) -> Iterator[churn_pb2.StreamPredictChurnResponse]:
        def work(
            request: churn_pb2.StreamPredictChurnRequest,
        ) -> churn_pb2.StreamPredictChurnResponse:
            return self._predict(
                churn_pb2.StreamPredictChurnResponse(sequence=request.sequence),
                request.customers, batch_of(request),
                include_drivers=request.include_drivers, version=0, context=context,
            )  # fmt: skip

        return self.stream(request_iterator, work)

    def WatchChurnAlerts(
        self, request: churn_pb2.WatchChurnAlertsRequest, context: grpc.ServicerContext
    ) -> Iterator[churn_pb2.WatchChurnAlertsResponse]:
        if not 0.0 <= request.min_probability <= 1.0:
            raise InvalidArgument(FieldViolation("min_probability", "must be within 0..1"))
        level = request.min_risk_level or churn_pb2.RISK_LEVEL_HIGH
        if level not in churn_pb2.RiskLevel.values():
            raise InvalidArgument(FieldViolation("min_risk_level", "unknown risk level"))
        sub = self.hub.subscribe(request.min_probability, level)
        context.add_callback(sub.close)
        try:
            while context.is_active() and not sub.closed:
                alert = sub.take(timeout=0.5)
                if alert is not None:
                    yield to_message(alert, sub.dropped)
        finally:
            self.hub.unsubscribe(sub)

    def GetChurnStats(
        self, request: churn_pb2.GetChurnStatsRequest, context: grpc.ServicerContext
    ) -> churn_pb2.GetChurnStatsResponse:
        artifact = self.model()
        thresholds = self._thresholds(artifact)
        response = churn_pb2.GetChurnStatsResponse(
            model=model_ref(artifact),
            live=self.live.to_message(),
            risk_thresholds=thresholds.tolist(),
        )
        scored = self.snapshot_outputs(artifact)
        if scored is not None:
            _, out = scored
            probs = np.asarray(out["probability"], dtype=np.float64).reshape(-1)
            stats = ScoreStats()
            stats.add(probs, risk_levels(probs, thresholds))
            response.snapshot.CopyFrom(stats.to_message())
        return response

"""ChurnService: converts between crm.v1 churn messages and the churn handler."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import grpc
import numpy as np

from crm.v1 import churn_pb2, churn_pb2_grpc
from server.dataplane.alerts import to_message
from server.dataplane.churn import ChurnHandler, ChurnScores
from server.dataplane.risk_rules import recommendations
from server.errors import FieldViolation, InvalidArgument
from server.services.rows import (
    STREAM_WINDOW,
    as_of_ns,
    batch_of,
    model_ref,
    pipelined,
    slots,
    stamp_as_of,
)

Reply = TypeVar("Reply", churn_pb2.PredictChurnResponse, churn_pb2.StreamPredictChurnResponse)


def fill(response: Reply, scores: ChurnScores, columnar: bool) -> Reply:
    """The fields unary and streamed replies share, added in place (building predictions
    apart and extending the reply would copy every one again)."""
    response.model.CopyFrom(model_ref(scores.model))
    response.horizon_days = scores.horizon_days
    stamp_as_of(response, scores.rows)
    probs, rows = scores.probabilities, scores.rows
    if columnar:
        response.columns.SetInParent()  # present even with no row (clients test it)
        response.columns.probabilities.extend(probs.astype(np.float32).tolist())
        response.columns.risk_levels.extend(scores.levels.tolist())
        return response
    probabilities, levels = probs.tolist(), scores.levels.tolist()
    high_value, drivers = scores.high_value.tolist(), scores.drivers
    add = response.predictions.add
    for i, k in slots(rows):
        if k is None:
            add(
                index=i,
                customer_id=rows.customer_ids[i],
                request_key=rows.request_keys[i],
                error=rows.errors[i],
            )
            continue
        level = levels[k]
        add(
            index=i,
            customer_id=rows.customer_ids[i],
            request_key=rows.request_keys[i],
            probability=probabilities[k],
            risk_level=level,
            recommendations=recommendations(level, high_value[k]),
            drivers=None
            if drivers is None
            else [
                churn_pb2.ChurnDriver(feature=d.feature, value=d.value, contribution=d.contribution)
                for d in drivers[k]
            ],
        )
    return response


class ChurnServicer(churn_pb2_grpc.ChurnServiceServicer):
    def __init__(self, handler: ChurnHandler, stream_pool: ThreadPoolExecutor) -> None:
        self.handler = handler
        self.stream_pool = stream_pool

    def close(self) -> None:
        self.handler.close()

    def PredictChurn(
        self, request: churn_pb2.PredictChurnRequest, context: grpc.ServicerContext
    ) -> churn_pb2.PredictChurnResponse:
        batch = batch_of(request)
        scores = self.handler.predict(
            request.customers, batch, include_drivers=request.include_drivers,
            version=request.model_version, timeout=context.time_remaining(),
            as_of_ns=as_of_ns(request),
        )  # fmt: skip
        return fill(churn_pb2.PredictChurnResponse(), scores, batch is not None)

    def StreamPredictChurn(
        self,
        request_iterator: Iterator[churn_pb2.StreamPredictChurnRequest],
        context: grpc.ServicerContext,
    ) -> Iterator[churn_pb2.StreamPredictChurnResponse]:
        def work(
            request: churn_pb2.StreamPredictChurnRequest,
        ) -> churn_pb2.StreamPredictChurnResponse:
            batch = batch_of(request)
            scores = self.handler.predict(
                request.customers, batch, include_drivers=request.include_drivers,
                timeout=context.time_remaining(), as_of_ns=as_of_ns(request),
            )  # fmt: skip
            reply = churn_pb2.StreamPredictChurnResponse(sequence=request.sequence)
            return fill(reply, scores, batch is not None)

        return pipelined(request_iterator, work, self.stream_pool, STREAM_WINDOW)

    def WatchChurnAlerts(
        self, request: churn_pb2.WatchChurnAlertsRequest, context: grpc.ServicerContext
    ) -> Iterator[churn_pb2.WatchChurnAlertsResponse]:
        if not 0.0 <= request.min_probability <= 1.0:
            raise InvalidArgument(FieldViolation("min_probability", "must be within 0..1"))
        level = request.min_risk_level or churn_pb2.RISK_LEVEL_HIGH
        if level not in churn_pb2.RiskLevel.values():
            raise InvalidArgument(FieldViolation("min_risk_level", "unknown risk level"))
        hub = self.handler.hub
        sub = hub.subscribe(request.min_probability, level)
        context.add_callback(sub.close)
        try:
            while context.is_active() and not sub.closed:
                alert = sub.take(timeout=0.5)
                if alert is not None:
                    yield to_message(alert, sub.dropped)
        finally:
            hub.unsubscribe(sub)

    def GetChurnStats(
        self, request: churn_pb2.GetChurnStatsRequest, context: grpc.ServicerContext
    ) -> churn_pb2.GetChurnStatsResponse:
        stats = self.handler.stats()
        response = churn_pb2.GetChurnStatsResponse(
            model=model_ref(stats.model),
            live=stats.live.to_message(),
            risk_thresholds=list(stats.thresholds),
        )
        if stats.snapshot is not None:
            response.snapshot.CopyFrom(stats.snapshot.to_message())
        return response

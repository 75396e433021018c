"""ScoringClient: the segmentation, churn and spend calls, returning clients.scoring_types.

Bulk scoring of a pandas DataFrame streams columnar batches through the bidi RPCs
(clients.frames encodes and decodes them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import grpc

from clients import scoring_convert as convert
from clients.calls import Caller
from clients.frames import FrameBatches, response_rows
from clients.scoring_types import (
    ChurnAlert,
    ChurnStatsReport,
    Customer,
    History,
    Line,
    RevenueForecast,
    Scored,
    SegmentOverview,
)
from crm.v1 import (
    churn_pb2,
    churn_pb2_grpc,
    segmentation_pb2,
    segmentation_pb2_grpc,
    spend_pb2,
    spend_pb2_grpc,
)

# `from clients.scoring import History, Line` is the documented import (README).
__all__ = ["History", "Line", "ScoringClient"]

# A watch ends normally by its deadline or by the caller stopping it.
WATCH_ENDS = (grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED)


class ScoringClient:
    """Segmentation, churn and spend calls; failures raise CrmError."""

    def __init__(
        self, channel: grpc.Channel, timeout: float = 10.0, *, call: Caller | None = None
    ) -> None:
        """`call`: share a CrmClient's deadline and error mapping instead of `timeout`."""
        self._churn = churn_pb2_grpc.ChurnServiceStub(channel)
        self._spend = spend_pb2_grpc.SpendServiceStub(channel)
        self._segmentation = segmentation_pb2_grpc.SegmentationServiceStub(channel)
        self._call = call or Caller(timeout)

    def predict_churn(self, customers: Iterable[Customer], include_drivers: bool = False) -> Scored:
        request = churn_pb2.PredictChurnRequest(
            customers=[convert.to_input(c) for c in customers], include_drivers=include_drivers
        )
        return convert.scored_churn(self._call(self._churn.PredictChurn, request))

    def predict_spend(self, customers: Iterable[Customer]) -> Scored:
        request = spend_pb2.PredictSpendRequest(customers=[convert.to_input(c) for c in customers])
        return convert.scored_spend(self._call(self._spend.PredictSpend, request))

    def assign_segments(self, customers: Iterable[Customer]) -> Scored:
        request = segmentation_pb2.AssignSegmentsRequest(
            customers=[convert.to_input(c) for c in customers]
        )
        return convert.scored_segments(self._call(self._segmentation.AssignSegments, request))

    def segment_summary(self) -> SegmentOverview:
        request = segmentation_pb2.GetSegmentSummaryRequest()
        return convert.segment_overview(self._call(self._segmentation.GetSegmentSummary, request))

    def churn_stats(self) -> ChurnStatsReport:
        request = churn_pb2.GetChurnStatsRequest()
        return convert.churn_stats_report(self._call(self._churn.GetChurnStats, request))

    def predict_invoice_revenue(self, lines: Iterable[Line]) -> RevenueForecast:
        request = spend_pb2.PredictInvoiceRevenueRequest(
            lines=[convert.line_message(x) for x in lines]
        )
        return convert.revenue_forecast(self._call(self._spend.PredictInvoiceRevenue, request))

    def watch_churn_alerts(
        self,
        min_probability: float = 0.0,
        min_risk_level: str = "HIGH",
        timeout: float | None = None,
    ) -> Iterator[ChurnAlert]:
        """Alerts as they happen, until the timeout (None: forever) or the caller stops."""
        request = churn_pb2.WatchChurnAlertsRequest(
            min_probability=min_probability,
            min_risk_level=churn_pb2.RiskLevel.Value(f"RISK_LEVEL_{min_risk_level}"),
        )
        stream = self._churn.WatchChurnAlerts(request, timeout=timeout)
        try:
            for message in self._call.stream(stream, ends=WATCH_ENDS):
                yield convert.churn_alert(message)
        finally:
            stream.cancel()

    # -- bulk ------------------------------------------------------------------------------
    def stream_frame(
        self,
        kind: str,
        frame: Any,
        batch_rows: int = 1000,
        id_column: str = "customer_id",
        on_progress: Callable[[int], None] | None = None,
    ) -> Any:
        """Score a DataFrame in order, streaming columnar batches (features) or id batches.

        `kind` is "churn", "spend" or "segments". Feature columns: every column but
        `id_column`; with `id_column` alone, customers are looked up by id.
        Returns a DataFrame of results, one row per input row, in input order.
        """
        import pandas as pd

        batches = FrameBatches.of(frame, batch_rows, id_column)
        rows: list[dict[str, Any]] = []
        responses = self._call.stream(self._frame_responses(kind, batches))
        for start, response in zip(batches.starts, responses, strict=False):
            rows.extend(response_rows(kind, response, start, batches.ids_at(start)))
            if on_progress is not None:
                on_progress(len(rows))
        return pd.DataFrame(rows)

    def _frame_responses(self, kind: str, batches: FrameBatches) -> Iterable[Any]:
        """Segments: one unary call a batch (no stream RPC); churn, spend: one bidi stream."""
        if kind == "segments":
            return (
                self._call(
                    self._segmentation.AssignSegments,
                    segmentation_pb2.AssignSegmentsRequest(**batches.payload(s)),
                )
                for s in batches.starts
            )
        method, request_type = {
            "churn": (self._churn.StreamPredictChurn, churn_pb2.StreamPredictChurnRequest),
            "spend": (self._spend.StreamPredictSpend, spend_pb2.StreamPredictSpendRequest),
        }[kind]
        return method(request_type(sequence=s, **batches.payload(s)) for s in batches.starts)

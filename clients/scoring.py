"""Typed client calls for segmentation, churn and spend, returning plain Python objects.

A customer is given as a customer id (`"13085"`), a mapping of feature values
(`{"recency_days": 3.0, ...}`), or a `History` of transaction lines plus an as-of time.
Bulk scoring of a pandas DataFrame streams columnar batches through the bidi RPCs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Union

import grpc
import numpy as np

from clients.common import ModelRef, RowFailure
from clients.errors import CrmError
from crm.v1 import churn_pb2, common_pb2, segmentation_pb2, spend_pb2


@dataclass(frozen=True)
class Line:
    """One transaction line (Online Retail II columns)."""

    invoice: str
    stock_code: str
    quantity: float
    price: float
    invoice_date: datetime
    customer_id: str = ""
    description: str = ""
    country: str = ""
    category: str = ""


@dataclass(frozen=True)
class History:
    lines: Sequence[Line]
    as_of: datetime


Customer = Union[str, Mapping[str, float], History]  # noqa: UP007 -- a runtime alias


@dataclass(frozen=True)
class Driver:
    feature: str
    value: float
    contribution: float


@dataclass(frozen=True)
class ChurnResult:
    index: int
    customer_id: str
    request_key: str
    probability: float | None
    risk_level: str | None  # "LOW" | "MEDIUM" | "HIGH" | "CRITICAL"
    recommendations: tuple[str, ...] = ()
    drivers: tuple[Driver, ...] = ()
    error: RowFailure | None = None


@dataclass(frozen=True)
class SpendResult:
    index: int
    customer_id: str
    request_key: str
    total: float | None
    categories: Mapping[str, float] = field(default_factory=dict)
    error: RowFailure | None = None


@dataclass(frozen=True)
class SegmentResult:
    index: int
    customer_id: str
    request_key: str
    segment: str | None  # "VIP", "Loyal", ...
    cluster_id: int | None
    recency_score: int | None
    frequency_score: int | None
    monetary_score: int | None
    recommended_action: str = ""
    error: RowFailure | None = None


@dataclass(frozen=True)
class SegmentSummary:
    segment: str
    cluster_id: int
    customers: int
    share: float
    mean_recency_days: float
    mean_frequency: float
    mean_monetary: float
    recommended_action: str


@dataclass(frozen=True)
class SegmentOverview:
    model: ModelRef
    total_customers: int
    currency: str
    segments: tuple[SegmentSummary, ...]


@dataclass(frozen=True)
class ChurnStats:
    scored: int
    mean_probability: float
    by_risk_level: Mapping[str, int]  # "LOW" -> count, ...
    distribution: tuple[tuple[float, int], ...]  # (bucket upper bound, count)


@dataclass(frozen=True)
class ChurnStatsReport:
    model: ModelRef
    live: ChurnStats
    snapshot: ChurnStats
    risk_thresholds: tuple[float, ...]


@dataclass(frozen=True)
class ChurnAlert:
    customer_id: str
    request_key: str
    probability: float
    risk_level: str
    model: ModelRef
    scored_at: datetime
    dropped_total: int  # alerts this subscriber lost so far (its queue was full)


@dataclass(frozen=True)
class LineRevenue:
    index: int
    gross_revenue: float
    expected_net_revenue: float


@dataclass(frozen=True)
class RevenueForecast:
    model: ModelRef
    currency: str
    lines: tuple[LineRevenue, ...]
    total_expected_net_revenue: float


@dataclass(frozen=True)
class Scored:
    model: ModelRef
    results: list[Any]
    currency: str = ""
    horizon_days: int = 0


def _line_message(line: Line) -> common_pb2.TransactionLine:
    msg = common_pb2.TransactionLine(
        invoice=line.invoice, stock_code=line.stock_code, quantity=line.quantity,
        price=line.price, customer_id=line.customer_id, description=line.description,
        country=line.country, category=line.category,
    )  # fmt: skip
    msg.invoice_date.FromDatetime(line.invoice_date)
    return msg


def _level(value: int) -> str:
    return churn_pb2.RiskLevel.Name(value).removeprefix("RISK_LEVEL_")


def _stats(s: churn_pb2.ChurnStats) -> ChurnStats:
    return ChurnStats(
        s.scored,
        s.mean_probability,
        {_level(c.risk_level): c.count for c in s.by_risk_level},
        tuple((b.upper_bound, b.count) for b in s.distribution),
    )


def to_input(customer: Customer, request_key: str = "") -> common_pb2.CustomerInput:
    if isinstance(customer, str):
        return common_pb2.CustomerInput(customer_id=customer, request_key=request_key)
    if isinstance(customer, History):
        history = common_pb2.TransactionHistory(lines=[_line_message(x) for x in customer.lines])
        history.as_of.FromDatetime(customer.as_of)
        return common_pb2.CustomerInput(transactions=history, request_key=request_key)
    if isinstance(customer, Mapping):
        return common_pb2.CustomerInput(
            features=common_pb2.FeatureValues(values={k: float(v) for k, v in customer.items()}),
            request_key=request_key,
        )
    raise TypeError(f"a customer is an id, a feature mapping or a History, not {type(customer)}")


def churn_result(p: churn_pb2.ChurnPrediction) -> ChurnResult:
    if p.HasField("error"):
        return ChurnResult(
            p.index, p.customer_id, p.request_key, None, None, error=RowFailure.from_proto(p.error)
        )
    return ChurnResult(
        p.index, p.customer_id, p.request_key, p.probability,
        _level(p.risk_level),
        tuple(r.code for r in p.recommendations),
        tuple(Driver(d.feature, d.value, d.contribution) for d in p.drivers),
    )  # fmt: skip


def spend_result(p: spend_pb2.SpendPrediction) -> SpendResult:
    if p.HasField("error"):
        return SpendResult(
            p.index, p.customer_id, p.request_key, None, error=RowFailure.from_proto(p.error)
        )
    cats = {c.category: c.amount for c in p.categories}
    return SpendResult(p.index, p.customer_id, p.request_key, p.total, cats)


def segment_result(a: segmentation_pb2.SegmentAssignment) -> SegmentResult:
    if a.HasField("error"):
        return SegmentResult(
            a.index, a.customer_id, a.request_key, None, None, None, None, None,
            error=RowFailure.from_proto(a.error),
        )  # fmt: skip
    return SegmentResult(
        a.index, a.customer_id, a.request_key, a.segment_name, a.cluster_id,
        a.recency_score, a.frequency_score, a.monetary_score, a.recommended_action,
    )  # fmt: skip


class ScoringClient:
    """Segmentation, churn and spend calls; `call` applies deadlines and error translation."""

    def __init__(self, stubs: Any, call: Callable[..., Any], timeout: float) -> None:
        self._s = stubs
        self._call = call
        self._timeout = timeout

    def _inputs(self, customers: Iterable[Customer]) -> list[common_pb2.CustomerInput]:
        return [to_input(c) for c in customers]

    def predict_churn(self, customers: Iterable[Customer], include_drivers: bool = False) -> Scored:
        response = self._call(
            self._s.churn_stub.PredictChurn,
            churn_pb2.PredictChurnRequest(
                customers=self._inputs(customers), include_drivers=include_drivers
            ),
        )
        return Scored(
            ModelRef.from_proto(response.model), [churn_result(p) for p in response.predictions],
            horizon_days=response.horizon_days,
        )  # fmt: skip

    def predict_spend(self, customers: Iterable[Customer]) -> Scored:
        response = self._call(
            self._s.spend_stub.PredictSpend,
            spend_pb2.PredictSpendRequest(customers=self._inputs(customers)),
        )
        return Scored(
            ModelRef.from_proto(response.model), [spend_result(p) for p in response.predictions],
            response.currency, response.horizon_days,
        )  # fmt: skip

    def assign_segments(self, customers: Iterable[Customer]) -> Scored:
        response = self._call(
            self._s.segmentation_stub.AssignSegments,
            segmentation_pb2.AssignSegmentsRequest(customers=self._inputs(customers)),
        )
        return Scored(
            ModelRef.from_proto(response.model), [segment_result(a) for a in response.assignments]
        )

    def segment_summary(self) -> SegmentOverview:
        r = self._call(
            self._s.segmentation_stub.GetSegmentSummary, segmentation_pb2.GetSegmentSummaryRequest()
        )
        return SegmentOverview(
            ModelRef.from_proto(r.model), r.total_customers, r.currency,
            tuple(
                SegmentSummary(
                    s.segment_name, s.cluster_id, s.customers, s.share, s.mean_recency_days,
                    s.mean_frequency, s.mean_monetary, s.recommended_action,
                )
                for s in r.segments
            ),
        )  # fmt: skip

    def churn_stats(self) -> ChurnStatsReport:
        r = self._call(self._s.churn_stub.GetChurnStats, churn_pb2.GetChurnStatsRequest())
        return ChurnStatsReport(
            ModelRef.from_proto(r.model), _stats(r.live), _stats(r.snapshot),
            tuple(r.risk_thresholds),
        )  # fmt: skip

    def predict_invoice_revenue(self, lines: Iterable[Line]) -> RevenueForecast:
        r = self._call(
            self._s.spend_stub.PredictInvoiceRevenue,
            spend_pb2.PredictInvoiceRevenueRequest(lines=[_line_message(x) for x in lines]),
        )
        return RevenueForecast(
            ModelRef.from_proto(r.model), r.currency,
            tuple(LineRevenue(x.index, x.gross_revenue, x.expected_net_revenue) for x in r.lines),
            r.total_expected_net_revenue,
        )  # fmt: skip

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
        stream = self._s.churn_stub.WatchChurnAlerts(request, timeout=timeout)
        try:
            for m in stream:
                a = m.alert
                yield ChurnAlert(
                    a.customer_id, a.request_key, a.probability, _level(a.risk_level),
                    ModelRef.from_proto(a.model), a.scored_at.ToDatetime(), m.dropped_total,
                )  # fmt: skip
        except grpc.RpcError as err:
            if err.code() not in (grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise CrmError.from_rpc_error(err) from None
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

        ids = frame[id_column].astype(str).tolist() if id_column in frame.columns else None
        feature_cols = [c for c in frame.columns if c != id_column]
        values = frame[feature_cols].to_numpy(dtype=np.float32) if feature_cols else None
        starts = range(0, len(frame), batch_rows)

        def payload(start: int) -> dict[str, Any]:
            stop = min(start + batch_rows, len(frame))
            if values is not None:
                batch = common_pb2.FeatureMatrix(
                    feature_names=feature_cols,
                    values=values[start:stop].reshape(-1).tolist(),
                    row_keys=ids[start:stop] if ids else [],
                )
                return {"batch": batch}
            assert ids is not None
            return {"customers": [to_input(c) for c in ids[start:stop]]}

        rows: list[dict[str, Any]] = []
        try:
            if kind == "segments":
                responses: Iterable[Any] = (
                    self._s.segmentation_stub.AssignSegments(
                        segmentation_pb2.AssignSegmentsRequest(**payload(s)), timeout=self._timeout
                    )
                    for s in starts
                )
            else:
                stub, request_type = {
                    "churn": (self._s.churn_stub.StreamPredictChurn, churn_pb2.StreamPredictChurnRequest),
                    "spend": (self._s.spend_stub.StreamPredictSpend, spend_pb2.StreamPredictSpendRequest),
                }[kind]  # fmt: skip
                responses = stub(request_type(sequence=s, **payload(s)) for s in starts)
            for start, response in zip(starts, responses, strict=False):
                batch_ids = ids[start : start + batch_rows] if ids else None
                rows.extend(_rows(kind, response, start, batch_ids))
                if on_progress is not None:
                    on_progress(len(rows))
        except grpc.RpcError as err:
            raise CrmError.from_rpc_error(err) from None
        return pd.DataFrame(rows)


def _rows(kind: str, response: Any, start: int, ids: Sequence[str] | None) -> list[dict[str, Any]]:
    model = f"{response.model.name}:{response.model.version}"
    if kind == "segments":
        if response.HasField("columns"):
            return _segment_rows(response.columns, start, ids, model)
        return [
            {"row": start + a.index, "customer_id": a.customer_id, "model": model,
             **_drop_index(segment_result(a))}
            for a in response.assignments
        ]  # fmt: skip
    if response.HasField("columns"):
        cols = response.columns
        if kind == "churn":
            return [
                {"row": start + i, "customer_id": ids[i] if ids else "", "model": model,
                 "probability": float(p), "risk_level": _level(r)}
                for i, (p, r) in enumerate(zip(cols.probabilities, cols.risk_levels, strict=True))
            ]  # fmt: skip
        width = len(cols.categories)
        amounts = np.asarray(cols.category_amounts, dtype=np.float64).reshape(-1, width or 1)
        return [
            {"row": start + i, "customer_id": ids[i] if ids else "", "model": model,
             "total": float(t), **{f"spend_{c}": float(amounts[i, j]) for j, c in enumerate(cols.categories)}}
            for i, t in enumerate(cols.totals)
        ]  # fmt: skip
    convert = churn_result if kind == "churn" else spend_result
    out = []
    for p in response.predictions:
        result = _drop_index(convert(p))
        if kind == "spend":
            cats = result.pop("categories") or {}
            result.update({f"spend_{c}": v for c, v in cats.items()})
        out.append({"row": start + p.index, "model": model, **result})
    return out


def _segment_rows(
    cols: segmentation_pb2.SegmentColumns, start: int, ids: Sequence[str] | None, model: str
) -> list[dict[str, Any]]:
    legend = {c.cluster_id: c for c in cols.legend}
    unknown = segmentation_pb2.SegmentLegend()
    return [
        {"row": start + i, "customer_id": ids[i] if ids else "", "model": model,
         "segment": legend.get(c, unknown).segment_name, "cluster_id": c, "recency_score": r,
         "frequency_score": f, "monetary_score": m,
         "recommended_action": legend.get(c, unknown).recommended_action}
        for i, (c, r, f, m) in enumerate(zip(
            cols.cluster_ids, cols.recency_scores, cols.frequency_scores, cols.monetary_scores,
            strict=True,
        ))
    ]  # fmt: skip


def _drop_index(result: Any) -> dict[str, Any]:
    from dataclasses import asdict

    data = asdict(result)
    data.pop("index", None)
    data.pop("drivers", None)
    error = data.pop("error", None)
    data["error"] = f"{error['code']}: {error['message']}" if error else ""
    if "recommendations" in data:
        data["recommendations"] = ";".join(data["recommendations"])
    return data

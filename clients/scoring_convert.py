"""Scoring wire conversions: customers and lines to request messages, responses to dataclasses.

The one place that knows how the scoring protos spell a result, so the calls (clients.scoring)
and the DataFrame rows (clients.frames) read rows the same way.
"""

from __future__ import annotations

from collections.abc import Mapping

from clients.common import ModelRef, RowFailure
from clients.scoring_types import (
    ChurnAlert,
    ChurnResult,
    ChurnStats,
    ChurnStatsReport,
    Customer,
    Driver,
    History,
    Line,
    LineRevenue,
    RevenueForecast,
    Scored,
    SegmentOverview,
    SegmentResult,
    SegmentSummary,
    SpendResult,
)
from crm.v1 import churn_pb2, common_pb2, segmentation_pb2, spend_pb2


# -- to the wire ---------------------------------------------------------------------------------
def line_message(line: Line) -> common_pb2.TransactionLine:
    msg = common_pb2.TransactionLine(
        invoice=line.invoice, stock_code=line.stock_code, quantity=line.quantity,
        price=line.price, customer_id=line.customer_id, description=line.description,
        country=line.country, category=line.category,
    )  # fmt: skip
    msg.invoice_date.FromDatetime(line.invoice_date)
    return msg


def to_input(customer: Customer, request_key: str = "") -> common_pb2.CustomerInput:
    if isinstance(customer, str):
        return common_pb2.CustomerInput(customer_id=customer, request_key=request_key)
    if isinstance(customer, History):
        history = common_pb2.TransactionHistory(lines=[line_message(x) for x in customer.lines])
        history.as_of.FromDatetime(customer.as_of)
        return common_pb2.CustomerInput(transactions=history, request_key=request_key)
    if isinstance(customer, Mapping):
        return common_pb2.CustomerInput(
            features=common_pb2.FeatureValues(values={k: float(v) for k, v in customer.items()}),
            request_key=request_key,
        )
    raise TypeError(f"a customer is an id, a feature mapping or a History, not {type(customer)}")


# -- from the wire: one row ----------------------------------------------------------------------
def risk_level(value: int) -> str:
    """A churn_pb2.RiskLevel by its short name: "LOW", "MEDIUM", "HIGH" or "CRITICAL"."""
    return churn_pb2.RiskLevel.Name(value).removeprefix("RISK_LEVEL_")


def churn_result(p: churn_pb2.ChurnPrediction) -> ChurnResult:
    if p.HasField("error"):
        return ChurnResult(
            p.index, p.customer_id, p.request_key, None, None, error=RowFailure.from_proto(p.error)
        )
    return ChurnResult(
        p.index, p.customer_id, p.request_key, p.probability,
        risk_level(p.risk_level),
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


# -- from the wire: whole responses --------------------------------------------------------------
def scored_churn(r: churn_pb2.PredictChurnResponse) -> Scored:
    return Scored(
        ModelRef.from_proto(r.model), [churn_result(p) for p in r.predictions],
        horizon_days=r.horizon_days,
    )  # fmt: skip


def scored_spend(r: spend_pb2.PredictSpendResponse) -> Scored:
    return Scored(
        ModelRef.from_proto(r.model), [spend_result(p) for p in r.predictions],
        r.currency, r.horizon_days,
    )  # fmt: skip


def scored_segments(r: segmentation_pb2.AssignSegmentsResponse) -> Scored:
    return Scored(ModelRef.from_proto(r.model), [segment_result(a) for a in r.assignments])


def segment_overview(r: segmentation_pb2.GetSegmentSummaryResponse) -> SegmentOverview:
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


def _churn_stats(s: churn_pb2.ChurnStats) -> ChurnStats:
    return ChurnStats(
        s.scored,
        s.mean_probability,
        {risk_level(c.risk_level): c.count for c in s.by_risk_level},
        tuple((b.upper_bound, b.count) for b in s.distribution),
    )


def churn_stats_report(r: churn_pb2.GetChurnStatsResponse) -> ChurnStatsReport:
    return ChurnStatsReport(
        ModelRef.from_proto(r.model), _churn_stats(r.live), _churn_stats(r.snapshot),
        tuple(r.risk_thresholds),
    )  # fmt: skip


def revenue_forecast(r: spend_pb2.PredictInvoiceRevenueResponse) -> RevenueForecast:
    return RevenueForecast(
        ModelRef.from_proto(r.model), r.currency,
        tuple(LineRevenue(x.index, x.gross_revenue, x.expected_net_revenue) for x in r.lines),
        r.total_expected_net_revenue,
    )  # fmt: skip


def churn_alert(m: churn_pb2.WatchChurnAlertsResponse) -> ChurnAlert:
    a = m.alert
    return ChurnAlert(
        a.customer_id, a.request_key, a.probability, risk_level(a.risk_level),
        ModelRef.from_proto(a.model), a.scored_at.ToDatetime(), m.dropped_total,
    )  # fmt: skip

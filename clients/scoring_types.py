"""What the scoring calls take and give back, as plain dataclasses (no gRPC, no protobuf).

A customer is given as a customer id (`"13085"`), a mapping of feature values
(`{"recency_days": 3.0, ...}`), or a `History` of transaction lines plus an as-of time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Union

from clients.common import ModelRef, RowFailure


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
    """A batch call's answer: `results` are ChurnResult, SpendResult or SegmentResult rows."""

    model: ModelRef
    results: list[Any]
    currency: str = ""
    horizon_days: int = 0

"""Plan actions as people read them: a priced candidate becomes an Action whose rationale
names the numbers behind it; a product at stockout risk becomes an advisory action."""

from __future__ import annotations

import math
from dataclasses import dataclass

from server.campaign.assumptions import Assumptions
from server.campaign.types import (
    Action,
    Audience,
    Channel,
    Objective,
    Position,
    Segment,
    SegmentProfile,
)


@dataclass(frozen=True)
class Priced:
    discount: float
    extra_units: float
    revenue: float
    margin: float
    cost_cents: int
    responders: float


@dataclass(frozen=True)
class Candidate:
    objective: Objective
    position: Position | None
    profile: SegmentProfile
    audience: Audience
    channel: Channel
    options: tuple[Priced, ...]
    context: str  # the numbers behind the candidate, for the rationale


def pct(x: float) -> str:
    return f"{x * 100:.0f}%" if abs(x * 100 - round(x * 100)) < 1e-9 else f"{x * 100:.1f}%"


def num(x: float) -> str:
    """Numbers as people write them: 74, 0.0714, 3.99, 12.5, 1,250."""
    if math.isinf(x):
        return "unlimited"
    if abs(x) >= 100 or float(x).is_integer():
        return f"{x:,.0f}"
    return f"{x:.1f}" if abs(x) >= 10 else f"{x:.3g}"


def money(x: float, currency: str) -> str:
    return f"{x:,.2f} {currency}"


def paid_action(candidate: Candidate, priced: Priced, currency: str) -> Action:
    pos = candidate.position
    numbers = (
        f"{num(candidate.audience.customers)} contacts by {candidate.channel.key} at "
        f"{pct(priced.discount)} off -> {num(priced.responders)} expected responders, "
        f"{num(priced.extra_units)} extra units, revenue {money(priced.revenue, currency)}, "
        f"margin {money(priced.margin, currency)} for {money(priced.cost_cents / 100, currency)} "
        f"of budget"
    )
    if priced.discount == 0:
        numbers += " (a discount would cost more margin than it brings)"
    return Action(
        rank=0,
        objective=candidate.objective,
        product_id=pos.item.product_id if pos else "",
        category=pos.item.category if pos else "",
        segment=candidate.profile.segment,
        segment_name=candidate.profile.name,
        audience_size=candidate.audience.customers,
        channel=candidate.channel,
        discount=priced.discount,
        expected_extra_units=round(priced.extra_units, 2),
        expected_revenue=round(priced.revenue, 2),
        expected_margin=round(priced.margin, 2),
        budget_used=priced.cost_cents / 100,
        rationale=f"{candidate.context}. {numbers}.",
    )


def protect_action(position: Position, horizon_days: int, assumptions: Assumptions) -> Action:
    item, d = position.item, position.forecast_daily_units
    if position.days_of_cover <= assumptions.stockout_cover_days:
        rule = f"at or below the {num(assumptions.stockout_cover_days)}-day stockout threshold"
    else:
        rule = (
            f"but the {num(item.stock_on_hand)} on hand last {num(position.on_hand_cover_days)} "
            f"days, less than the {num(item.lead_time_days)}-day lead time"
        )
    short = max(0.0, d * item.lead_time_days - item.stock_on_hand)
    arrival = (
        f"the {num(item.units_on_order)} on order arrive"
        if item.units_on_order > 0
        else "stock ordered today could arrive"
    )
    gap = f"; about {num(short)} units short before {arrival}" if short > 0.005 else ""
    rationale = (
        f"Stockout risk: {item.product_id} ({item.category or 'uncategorised'}) has "
        f"{num(position.days_of_cover)} days of cover ({num(item.stock_on_hand)} on hand + "
        f"{num(item.units_on_order)} on order at {num(d)}/day), {rule}{gap}. Hold the price: "
        f"no discount, no promotion, and excluded from vouchers for the next {horizon_days} days."
    )
    return Action(
        rank=0,
        objective=Objective.PROTECT_STOCKOUT,
        product_id=item.product_id,
        category=item.category,
        segment=Segment.UNSPECIFIED,
        segment_name="",
        audience_size=0,
        channel=Channel.UNSPECIFIED,
        discount=0.0,
        expected_extra_units=0.0,
        expected_revenue=0.0,
        expected_margin=0.0,
        budget_used=0.0,
        rationale=rationale,
        advisory=True,
    )

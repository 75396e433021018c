"""The campaign planner: candidate actions, their expected economics, the budget-bounded plan.

Pure functions over plain dataclasses; the same inputs give the same plan, byte for byte.

Candidates
  CLEAR_OVERSTOCK / MOVE_DEAD_STOCK  one per OVERSTOCK / DEAD_STOCK product, aimed at the
      segment with the strongest affinity for the product's category (highest mean share of
      the members' spend in it, among segments with at least MIN_AUDIENCE buyers of it); the
      audience is that segment's buyers of the category.
  WIN_BACK           one per At-Risk / Lost segment; the audience is the whole segment.
  RETAIN_HIGH_VALUE  one per VIP / Loyal segment; the audience is its members at or above the
      churn model's high-risk threshold.
  PROTECT_STOCKOUT   one per STOCKOUT_RISK product: advisory (Action.advisory, the wire's
      CampaignAction.advisory), never discounted, no channel, audience or budget (so the product
      is also never promoted by any other action).
  HEALTHY products, and products without a forecast (status UNSPECIFIED), get nothing.
Each paid candidate is priced at every discount level (0, 5%, 10%, ... up to max_discount,
plus max_discount itself) that keeps the margin after discount >= min_margin, and goes out on
the cheapest allowed channel (response rates are per segment, not per channel).

Economics of a product offer (discount x, audience N, segment response rate r, category
elasticity e, the audience's units of one product per invoice u (at least 1), price p, unit
cost c):
  extra units  = min(N * r * (1 + e * x) * u, clearable units)
  revenue      = extra * p * (1 - x)
  margin       = extra * (p * (1 - x) - c) - N * contact cost
  budget used  = extra * p * x + N * contact cost          (markdown + messages)
Clearable units keep the horizon's baseline demand B = d * horizon in stock: on_hand - B, and
for overstock at most the units above overstock_cover_days of cover after the horizon.
Responders are taken as incremental; offers are coupon-coded, so baseline sales keep full price.

Economics of a customer offer (voucher x on the next order; basket value b and units per
invoice from the audience; margin rate m = demand-weighted (p - c) / p of the inventory; the
"*" elasticity; products at stockout risk are excluded from the voucher):
  responders = N * r * (1 + e * x);   revenue = responders * b * (1 - x)
  margin     = responders * b * (m - x) - N * contact cost
  budget     = responders * b * x + N * contact cost
The plan is then chosen by `knapsack.allocate` (see there), which never exceeds the budget,
with at most `max_actions_per_segment` actions per segment (contact pressure). Plan order:
paid actions by expected margin, then the advisory ones, soonest stockout first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from server.campaign.actions import (
    Candidate,
    Priced,
    money,
    num,
    paid_action,
    pct,
    protect_action,
)
from server.campaign.assumptions import Assumptions
from server.campaign.knapsack import ALGORITHM, Option, allocate
from server.campaign.types import (
    ALL_CHANNELS,
    Action,
    Audience,
    Channel,
    Objective,
    Position,
    Segment,
    SegmentProfile,
    Status,
)

DISCOUNT_STEP = 0.05
# Fewer customers than this is not a campaign, and their mean category share is noise: such a
# segment is neither "the strongest affinity" for a category nor a customer-offer audience.
MIN_AUDIENCE = 5
WIN_BACK_SEGMENTS = (Segment.AT_RISK, Segment.LOST)
HIGH_VALUE_SEGMENTS = (Segment.VIP, Segment.LOYAL)
_PRODUCT_OBJECTIVES = {
    Status.OVERSTOCK: Objective.CLEAR_OVERSTOCK,
    Status.DEAD_STOCK: Objective.MOVE_DEAD_STOCK,
}


@dataclass(frozen=True)
class PlanRequest:
    budget: float  # money, >= 0
    horizon_days: int  # 1..7
    max_discount: float  # 0..1
    min_margin: float  # 0..1, fraction of the discounted price
    channels: tuple[Channel, ...] = ALL_CHANNELS


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    budget: float
    budget_used: float
    expected_margin: float
    algorithm: str
    positions: tuple[Position, ...]


@dataclass(frozen=True)
class _Context:
    """What every candidate is priced against."""

    request: PlanRequest
    assumptions: Assumptions
    channel: Channel
    currency: str
    margin_rate: float  # of the inventory, for customer-wide vouchers
    excluded: tuple[str, ...]  # products at stockout risk, never in a voucher


def cents(amount: float) -> int:
    """Money to whole cents, rounded up so the budget is never under-counted."""
    return math.ceil(round(amount * 100, 6))


def discount_levels(max_discount: float) -> list[float]:
    steps = math.floor(round(max_discount / DISCOUNT_STEP, 9))
    levels = [round(k * DISCOUNT_STEP, 4) for k in range(steps + 1)]
    if max_discount > levels[-1]:
        levels.append(max_discount)
    return levels


def _cheapest(channels: Sequence[Channel], assumptions: Assumptions) -> Channel:
    return min(channels, key=lambda c: (assumptions.contact_cost(c), c.value))


def margin_rate(positions: Sequence[Position]) -> float:
    """Demand-weighted gross margin fraction of the inventory (unweighted without demand)."""
    priced = sorted(
        (p for p in positions if p.status is not Status.UNSPECIFIED),
        key=lambda p: p.item.product_id,
    )
    weights = [p.forecast_daily_units for p in priced]
    if not priced:
        return 0.0
    if sum(weights) <= 0:
        weights = [1.0] * len(priced)
    revenue = sum(w * p.item.unit_price for w, p in zip(weights, priced, strict=True))
    cost = sum(w * p.item.unit_cost for w, p in zip(weights, priced, strict=True))
    return (revenue - cost) / revenue if revenue > 0 else 0.0


def clearable_units(position: Position, horizon_days: int, assumptions: Assumptions) -> float:
    item, d = position.item, position.forecast_daily_units
    baseline = d * horizon_days
    units = item.stock_on_hand - baseline
    if position.status is Status.OVERSTOCK:
        above = item.stock_on_hand + item.units_on_order - baseline
        units = min(units, above - d * assumptions.overstock_cover_days)
    return max(0.0, units)


def _strongest(category: str, segments: Sequence[SegmentProfile]) -> SegmentProfile | None:
    best: SegmentProfile | None = None
    for s in sorted(segments, key=lambda s: s.segment.value):
        affinity = s.category_affinity.get(category, 0.0)
        buyers = s.category_buyers.get(category)
        if affinity <= 0 or buyers is None or buyers.customers < MIN_AUDIENCE:
            continue
        if best is None or affinity > best.category_affinity.get(category, 0.0):
            best = s
    return best


def _product_candidate(
    position: Position, segments: Sequence[SegmentProfile], ctx: _Context
) -> Candidate | None:
    request, assumptions, channel, currency = (
        ctx.request,
        ctx.assumptions,
        ctx.channel,
        ctx.currency,
    )
    objective = _PRODUCT_OBJECTIVES.get(position.status)
    item = position.item
    profile = _strongest(item.category, segments) if objective else None
    if objective is None or profile is None:
        return None
    audience = profile.category_buyers[item.category]
    cap = clearable_units(position, request.horizon_days, assumptions)
    if cap <= 0:
        return None
    n, p, c = audience.customers, item.unit_price, item.unit_cost
    rate = assumptions.response_rate(profile.name)
    elasticity = assumptions.elasticity(item.category)
    units_each = max(audience.units_per_line, 1.0)
    contact = n * assumptions.contact_cost(channel)
    options = []
    for x in discount_levels(request.max_discount):
        price = p * (1 - x)
        if price - c < request.min_margin * price - 1e-12:
            continue
        responders = n * rate * (1 + elasticity * x)
        extra = min(responders * units_each, cap)
        options.append(
            Priced(
                discount=x,
                extra_units=extra,
                revenue=extra * price,
                margin=extra * (price - c) - contact,
                cost_cents=cents(extra * p * x + contact),
                responders=responders,
            )
        )
    if not options:
        return None
    if position.status is Status.OVERSTOCK:
        why = (
            f"Overstock: {item.product_id} ({item.category or 'uncategorised'}) has "
            f"{num(position.days_of_cover)} days of cover ({num(item.stock_on_hand)} on hand + "
            f"{num(item.units_on_order)} on order at {num(position.forecast_daily_units)}/day; "
            f"overstock above {num(assumptions.overstock_cover_days)} days)"
        )
    else:
        why = (
            f"Dead stock: {item.product_id} ({item.category or 'uncategorised'}) holds "
            f"{num(item.stock_on_hand)} units but sells {num(position.forecast_daily_units)}/day "
            f"(dead at or below {num(assumptions.dead_stock_daily_units)}/day)"
        )
    affinity = profile.category_affinity.get(item.category, 0.0)
    context = (
        f"{why}; {num(cap)} units can go without touching the {request.horizon_days}-day "
        f"baseline. Target {profile.name}: the segment with the strongest {item.category or 'uncategorised'} "
        f"affinity ({pct(affinity)} of spend), {n} buyers of the category, response "
        f"{pct(rate)}, elasticity {elasticity:g}, {num(units_each)} units per order; "
        f"price {money(p, currency)}, cost {money(c, currency)}"
    )
    return Candidate(objective, position, profile, audience, channel, tuple(options), context)


def _customer_candidate(
    objective: Objective, profile: SegmentProfile, audience: Audience, ctx: _Context
) -> Candidate | None:
    request, assumptions, channel, currency = (
        ctx.request,
        ctx.assumptions,
        ctx.channel,
        ctx.currency,
    )
    rate_of_margin, excluded = ctx.margin_rate, ctx.excluded
    n, basket = audience.customers, audience.avg_basket_value
    if n < MIN_AUDIENCE or basket <= 0:
        return None
    rate = assumptions.response_rate(profile.name)
    elasticity = assumptions.elasticity("*")
    contact = n * assumptions.contact_cost(channel)
    options = []
    for x in discount_levels(request.max_discount):
        if x >= 1 or (rate_of_margin - x) < request.min_margin * (1 - x) - 1e-12:
            continue
        responders = n * rate * (1 + elasticity * x)
        options.append(
            Priced(
                discount=x,
                extra_units=responders * audience.avg_units_per_invoice,
                revenue=responders * basket * (1 - x),
                margin=responders * basket * (rate_of_margin - x) - contact,
                cost_cents=cents(responders * basket * x + contact),
                responders=responders,
            )
        )
    if not options:
        return None
    if objective is Objective.WIN_BACK:
        who = f"Win back {profile.name}: {n} customers lapsing"
    else:
        who = (
            f"Retain high value: {n} {profile.name} customers at churn risk >= "
            f"{pct(profile.churn_threshold or 0.0)}"
        )
    exclusions = (
        f"; voucher excludes {len(excluded)} product(s) at stockout risk ({', '.join(excluded[:5])}"
        f"{', ...' if len(excluded) > 5 else ''})"
        if excluded
        else ""
    )
    context = (
        f"{who}, average order {money(basket, currency)}, response {pct(rate)}, elasticity "
        f"{elasticity:g}, inventory margin {pct(rate_of_margin)}{exclusions}"
    )
    return Candidate(objective, None, profile, audience, channel, tuple(options), context)


def _candidates(
    positions: Sequence[Position],
    segments: Sequence[SegmentProfile],
    request: PlanRequest,
    assumptions: Assumptions,
    currency: str,
) -> list[Candidate]:
    if not request.channels:
        return []
    ctx = _Context(
        request=request,
        assumptions=assumptions,
        channel=_cheapest(request.channels, assumptions),
        currency=currency,
        margin_rate=margin_rate(positions),
        excluded=tuple(
            sorted(p.item.product_id for p in positions if p.status is Status.STOCKOUT_RISK)
        ),
    )
    found: list[Candidate | None] = [
        _product_candidate(p, segments, ctx)
        for p in sorted(positions, key=lambda p: p.item.product_id)
    ]
    for profile in sorted(segments, key=lambda s: s.segment.value):
        if profile.segment in WIN_BACK_SEGMENTS:
            found.append(_customer_candidate(Objective.WIN_BACK, profile, profile.everyone, ctx))
        if profile.segment in HIGH_VALUE_SEGMENTS and profile.churn_risk is not None:
            found.append(
                _customer_candidate(Objective.RETAIN_HIGH_VALUE, profile, profile.churn_risk, ctx)
            )
    return [c for c in found if c is not None]


def plan(
    positions: Sequence[Position],
    segments: Sequence[SegmentProfile],
    request: PlanRequest,
    assumptions: Assumptions,
    currency: str,
) -> Plan:
    """The budget-bounded plan: paid actions by expected margin, then advisory ones."""
    candidates = _candidates(positions, segments, request, assumptions, currency)
    budget_cents = math.floor(round(request.budget * 100, 6))
    chosen = allocate(
        [[Option(o.cost_cents, o.margin) for o in c.options] for c in candidates],
        budget_cents,
        classes=[(c.profile.segment.value, c.profile.name) for c in candidates],
        per_class=assumptions.max_actions_per_segment,
    )
    paid = [
        paid_action(c, c.options[i], currency)
        for c, i in zip(candidates, chosen, strict=True)
        if i is not None
    ]
    paid.sort(key=lambda a: (-a.expected_margin, a.objective.value, a.product_id, a.segment))
    at_risk = sorted(
        (p for p in positions if p.status is Status.STOCKOUT_RISK),
        key=lambda p: (p.on_hand_cover_days, p.item.product_id),
    )
    advisory = [protect_action(p, request.horizon_days, assumptions) for p in at_risk]
    actions = tuple(
        Action(**{**a.__dict__, "rank": rank}) for rank, a in enumerate([*paid, *advisory], start=1)
    )
    used = sum(cents(a.budget_used) for a in actions) / 100
    return Plan(
        actions=actions,
        budget=request.budget,
        budget_used=used,
        expected_margin=round(sum(a.expected_margin for a in actions), 2),
        algorithm=ALGORITHM.format(per_segment=assumptions.max_actions_per_segment),
        positions=tuple(positions),
    )

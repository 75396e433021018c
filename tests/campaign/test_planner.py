"""The planner on hand-made inventories whose right answers are worked out in the comments."""

from __future__ import annotations

import dataclasses
import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from server.campaign.assumptions import Assumptions
from server.campaign.inventory import diagnose_all
from server.campaign.planner import Plan, PlanRequest, discount_levels, margin_rate, plan
from server.campaign.types import (
    Action,
    Channel,
    InventoryItem,
    Objective,
    Segment,
    SegmentProfile,
    Status,
)
from tests.campaign import scenarios as sc

# Pinned so the hand calculations below do not move with the shipped defaults.
A = Assumptions(
    price_elasticity_by_category={"home": 2.5, "toys": 3.0, "*": 2.0},
    response_rate_by_segment={"Loyal": 0.06, "Regular": 0.04, "At-Risk": 0.03, "*": 0.03},
    contact_cost_by_channel={"email": 0.002, "sms": 0.04, "whatsapp": 0.015},
    stockout_cover_days=7,
    overstock_cover_days=60,
    dead_stock_daily_units=0.05,
)


def make_plan(
    budget: float,
    max_discount: float = 0.3,
    min_margin: float = 0.0,
    segments: tuple[SegmentProfile, ...] = sc.SEGMENTS,
    **kw: object,
) -> Plan:
    positions = diagnose_all(sc.ITEMS, sc.DAILY, A)
    request = PlanRequest(budget, 7, max_discount, min_margin, **kw)  # type: ignore[arg-type]
    return plan(positions, segments, request, A, "GBP")


def by_objective(p: Plan, objective: Objective) -> list[Action]:
    return [a for a in p.actions if a.objective is objective]


def test_overstock_gets_the_margin_maximising_clearing_discount() -> None:
    # OVER: price 10, cost 4, 5/day, 1000 on hand -> 200 days of cover. Loyal has the strongest
    # home affinity (40%); its 300 home buyers respond at 6%, elasticity 2.5, 2 units each:
    #   units(x) = 300 * 0.06 * (1 + 2.5x) * 2 = 36 (1 + 2.5x)   (cap 665 is far away)
    #   margin(x) = units(x) * (10 (1 - x) - 4) - 300 * 0.002
    #   x=0: 215.40  x=.05: 222.15  x=.10: 224.40  x=.15: 222.15 -> 10% wins.
    p = make_plan(1000)
    (over,) = [a for a in p.actions if a.product_id == "OVER"]
    assert over.objective is Objective.CLEAR_OVERSTOCK
    assert (over.segment, over.segment_name, over.audience_size) == (Segment.LOYAL, "Loyal", 300)
    assert over.channel is Channel.EMAIL  # the cheapest channel
    assert over.discount == 0.10
    assert over.expected_extra_units == 45.0
    assert over.expected_revenue == 405.0
    assert over.expected_margin == 224.40
    assert over.budget_used == 45.60  # 45 units x 1.00 markdown + 0.60 of email
    for number in ("200 days of cover", "Loyal", "40%", "300 buyers", "10% off", "45 extra"):
        assert number in over.rationale, (number, over.rationale)


def test_dead_stock_goes_to_the_segment_with_the_strongest_category_affinity() -> None:
    p = make_plan(1000)
    (dead,) = [a for a in p.actions if a.product_id == "DEAD"]
    assert dead.objective is Objective.MOVE_DEAD_STOCK
    assert dead.segment_name == "Regular"  # toys: Regular 30% > Loyal 10% = At-Risk 10%
    assert dead.audience_size == 700
    assert dead.discount > 0  # elasticity 3 on a 62.5% margin pays for a discount


def test_stockout_risk_product_is_never_discounted_or_promoted() -> None:
    for budget in (0, 10, 1e6):
        p = make_plan(budget)
        low = [a for a in p.actions if a.product_id == "LOW"]
        assert [a.objective for a in low] == [Objective.PROTECT_STOCKOUT]
        assert (low[0].discount, low[0].budget_used, low[0].audience_size) == (0, 0, 0)
        # 12 days of cover is above the 7-day threshold: the lead-time rule fired
        assert "the 10 on hand last 2 days, less than the 14-day lead time" in low[0].rationale
        assert "60 units short before the 50 on order arrive" in low[0].rationale  # 5 x 14 - 10
        for voucher in by_objective(p, Objective.WIN_BACK):
            assert "excludes 1 product(s) at stockout risk (LOW)" in voucher.rationale
    assert not [a for a in make_plan(1e6).actions if a.product_id == "OK"]  # healthy: nothing


def test_stockout_rationale_names_the_threshold_rule() -> None:
    thin = InventoryItem("THIN", 20, 4.0, 10.0, 0, 3, "home")  # 4 days of cover, 3-day lead
    (position,) = diagnose_all([thin], {"THIN": 5.0}, A)
    actions = plan([position], sc.SEGMENTS, PlanRequest(10, 7, 0.3, 0.0), A, "GBP").actions
    (action,) = [a for a in actions if a.product_id == "THIN"]
    assert "4 days of cover" in action.rationale
    assert "at or below the 7-day stockout threshold" in action.rationale
    assert "short" not in action.rationale  # 20 on hand outlast the 3-day lead time


def test_tiny_segments_are_not_targeted() -> None:
    # Lost would have the strongest home affinity, but 4 buyers are noise, not a campaign.
    lost = sc.segment(Segment.LOST, "Lost", 4, {"home": 0.9}, {"home": 4})
    p = make_plan(1e6, segments=(*sc.SEGMENTS, lost))
    (over,) = [a for a in p.actions if a.product_id == "OVER"]
    assert over.segment_name == "Loyal"
    assert not [a for a in p.actions if a.segment_name == "Lost"]  # no 4-customer win-back


def test_budget_zero_gives_no_paid_actions() -> None:
    p = make_plan(0)
    assert p.budget_used == 0
    assert [a.objective for a in p.actions] == [Objective.PROTECT_STOCKOUT]
    assert p.expected_margin == 0


def test_tight_budget_buys_the_best_ratio_first() -> None:
    # The cheapest actions are the no-discount ones; with 1.00 only those costing <= 1.00 fit.
    p = make_plan(1.0)
    assert p.budget_used <= 1.0
    paid = [a for a in p.actions if a.budget_used > 0]
    assert paid and all(a.discount == 0 for a in paid)
    assert [a.rank for a in p.actions] == list(range(1, len(p.actions) + 1))
    margins = [a.expected_margin for a in paid]
    assert margins == sorted(margins, reverse=True)


def test_max_discount_and_min_margin_bound_every_offer() -> None:
    assert discount_levels(0.0) == [0.0]
    assert discount_levels(0.07) == [0.0, 0.05, 0.07]
    assert discount_levels(0.3)[-1] == 0.3
    capped = make_plan(1e6, max_discount=0.07)
    assert max(a.discount for a in capped.actions) <= 0.07
    # OVER at min margin 50%: 10 (1 - x) - 4 >= 5 (1 - x) only for x <= 0.2 -> 10% still wins;
    # at 58%: x <= 0.0476 -> only 0% is allowed.
    strict = make_plan(1e6, min_margin=0.58)
    (over,) = [a for a in strict.actions if a.product_id == "OVER"]
    assert over.discount == 0


def test_no_channels_or_no_segments_means_no_paid_actions() -> None:
    assert all(a.budget_used == 0 for a in make_plan(1e6, channels=()).actions)
    assert all(a.budget_used == 0 for a in make_plan(1e6, segments=()).actions)


def test_only_allowed_channels_are_used() -> None:
    p = make_plan(1e6, channels=(Channel.SMS, Channel.WHATSAPP))
    assert {a.channel for a in p.actions if a.budget_used > 0} == {Channel.WHATSAPP}


def test_customer_offers_use_the_inventory_margin() -> None:
    positions = diagnose_all(sc.ITEMS, sc.DAILY, A)
    # demand-weighted over OVER, DEAD, LOW, OK: (5*6*3 + 0.01*5) / (5*10*3 + 0.01*8)
    assert margin_rate(positions) == math.fsum([90, 0.05]) / math.fsum([150, 0.08])
    p = make_plan(1e6)
    (retain,) = by_objective(p, Objective.RETAIN_HIGH_VALUE)
    assert (retain.segment_name, retain.audience_size) == ("Loyal", 40)
    (win,) = by_objective(p, Objective.WIN_BACK)
    assert (win.segment_name, win.audience_size) == ("At-Risk", 400)


def test_same_inputs_same_plan_whatever_the_order() -> None:
    first = make_plan(123.45)
    items = list(sc.ITEMS)
    random.Random(3).shuffle(items)
    shuffled = plan(
        diagnose_all(items, sc.DAILY, A),
        tuple(reversed(sc.SEGMENTS)),
        PlanRequest(123.45, 7, 0.3, 0.0),
        A,
        "GBP",
    )
    assert first.actions == shuffled.actions
    assert first.actions == make_plan(123.45).actions


@st.composite
def inventories(draw: st.DrawFn) -> tuple[list[InventoryItem], dict[str, float]]:
    n = draw(st.integers(1, 12))
    items, daily = [], {}
    for i in range(n):
        price = draw(st.floats(0.5, 200))
        items.append(
            InventoryItem(
                product_id=f"P{i}",
                stock_on_hand=draw(st.sampled_from([0, 1, 10, 100, 1000, 5000])),
                unit_cost=price * draw(st.floats(0, 1.2)),
                unit_price=price,
                units_on_order=draw(st.sampled_from([0, 20, 500])),
                lead_time_days=draw(st.sampled_from([0, 3, 14, 30])),
                category=draw(st.sampled_from(["home", "toys", "other"])),
            )
        )
        daily[f"P{i}"] = draw(st.sampled_from([0.0, 0.01, 0.5, 2.0, 5.0, 40.0]))
    return items, daily


@settings(max_examples=150, deadline=None)
@given(
    inventories(),
    st.integers(0, 200_000),
    st.floats(0, 1),
    st.floats(0, 0.9),
)
def test_plans_never_break_the_rules(
    inventory: tuple[list[InventoryItem], dict[str, float]],
    budget_cents: int,
    max_discount: float,
    min_margin: float,
) -> None:
    items, daily = inventory
    positions = diagnose_all(items, daily, A)
    budget = budget_cents / 100
    p = plan(positions, sc.SEGMENTS, PlanRequest(budget, 7, max_discount, min_margin), A, "GBP")
    assert round(sum(a.budget_used * 100 for a in p.actions)) <= budget_cents
    assert p.budget_used <= budget
    status = {pos.item.product_id: pos.status for pos in positions}
    item_of = {i.product_id: i for i in items}
    for a in p.actions:
        assert 0 <= a.discount <= max_discount
        if a.product_id and status[a.product_id] is Status.STOCKOUT_RISK:
            assert (a.objective, a.discount, a.budget_used) == (
                Objective.PROTECT_STOCKOUT,
                0,
                0,
            )
        if a.objective in (Objective.CLEAR_OVERSTOCK, Objective.MOVE_DEAD_STOCK):
            item = item_of[a.product_id]
            price = item.unit_price * (1 - a.discount)
            assert price - item.unit_cost >= min_margin * price - 1e-9
        if a.budget_used > 0:
            assert a.expected_margin > 0
    per_segment = [
        a.segment_name for a in p.actions if a.objective is not Objective.PROTECT_STOCKOUT
    ]
    assert all(per_segment.count(s) <= A.max_actions_per_segment for s in per_segment)
    again = plan(positions, sc.SEGMENTS, PlanRequest(budget, 7, max_discount, min_margin), A, "GBP")
    assert again == p


def test_contact_pressure_caps_actions_per_segment() -> None:
    # Loyal is the target of OVER (margin 224.40) and of its own retention offer; with one
    # action per segment only the clearance remains for Loyal.
    one = dataclasses.replace(A, max_actions_per_segment=1)
    positions = diagnose_all(sc.ITEMS, sc.DAILY, one)
    p = plan(positions, sc.SEGMENTS, PlanRequest(1e6, 7, 0.3, 0.0), one, "GBP")
    paid = [a for a in p.actions if a.budget_used > 0]
    assert [a.segment_name for a in paid].count("Loyal") == 1
    assert any(a.product_id == "OVER" for a in paid)
    assert not by_objective(p, Objective.RETAIN_HIGH_VALUE)
    assert "at most 1 action(s) per customer segment" in p.algorithm
    assert len(by_objective(make_plan(1e6), Objective.RETAIN_HIGH_VALUE)) == 1

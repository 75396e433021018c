"""crm.v1 campaign messages <-> the planner's dataclasses, with request checks by field path.

Every check collects all problems of a request and raises one InvalidArgument whose
google.rpc.BadRequest names each field, e.g. `inventory[2].stock_on_hand`, `max_discount`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from crm.v1 import campaign_pb2, common_pb2
from server.campaign.assumptions import Assumptions
from server.campaign.drafts import Draft, fits_sms
from server.campaign.inventory import item_violations
from server.campaign.planner import Plan, PlanRequest
from server.campaign.types import (
    ADVISORY_OBJECTIVES,
    ALL_CHANNELS,
    Action,
    Channel,
    InventoryItem,
    Objective,
    Position,
    Segment,
)
from server.errors import FieldViolation, InvalidArgument

DEFAULT_HORIZON_DAYS = 7
# PlanCampaignsRequest.max_discount when unset (an explicit 0 is "no discount").
DEFAULT_MAX_DISCOUNT = 0.3
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_NAME = 200
MAX_NOTES = 10_000
MAX_FIELD_VALUE = 200
# What a ListCampaigns response holds besides its campaigns (the next page token), and what
# saving adds to a campaign (its id and created_at), with room to spare.
PAGE_OVERHEAD_BYTES = 4096
SAVED_FIELDS_BYTES = 64
MAX_BUDGET = 1e12  # money; its cents (1e14) are exact in a double and never overflow


def _raise_if(problems: Sequence[FieldViolation]) -> None:
    if problems:
        raise InvalidArgument(problems)


def _fraction(value: float, path: str, *, below_one: bool = False) -> list[FieldViolation]:
    ok = math.isfinite(value) and value >= 0 and (value < 1 if below_one else value <= 1)
    why = "must be a fraction 0..1 (0.3 = 30%)" + (", below 1" if below_one else "")
    return [] if ok else [FieldViolation(path, why)]


def _horizon(value: int, path: str = "horizon_days") -> tuple[int, list[FieldViolation]]:
    if not 0 <= value <= DEFAULT_HORIZON_DAYS:
        return 0, [FieldViolation(path, f"must be 1..{DEFAULT_HORIZON_DAYS} (0 = 7)")]
    return value or DEFAULT_HORIZON_DAYS, []


def _channels(values: Iterable[int], path: str) -> tuple[tuple[Channel, ...], list[FieldViolation]]:
    problems, chosen = [], []
    for i, value in enumerate(values):
        if value not in {c.value for c in ALL_CHANNELS}:
            problems.append(FieldViolation(f"{path}[{i}]", "must be EMAIL, SMS or WHATSAPP"))
        elif Channel(value) not in chosen:
            chosen.append(Channel(value))
    return (tuple(chosen) or ALL_CHANNELS), problems


# -- requests ----------------------------------------------------------------------------------
def forecast_request(
    request: campaign_pb2.ForecastDemandRequest, max_rows: int
) -> tuple[list[str], int]:
    """(product ids, empty = all; horizon days)."""
    horizon, problems = _horizon(request.horizon_days)
    if len(request.product_ids) > max_rows:
        problems.append(FieldViolation("product_ids", f"at most {max_rows} per request"))
    else:
        problems += [
            FieldViolation(f"product_ids[{i}]", "required (non-empty)")
            for i, p in enumerate(request.product_ids)
            if not p.strip()
        ]
    _raise_if(problems)
    return list(request.product_ids), horizon


def plan_request(
    request: campaign_pb2.PlanCampaignsRequest, max_rows: int
) -> tuple[PlanRequest, list[InventoryItem] | None]:
    """The checked plan request and its inventory (None = use the default snapshot)."""
    horizon, problems = _horizon(request.horizon_days)
    if not (math.isfinite(request.budget) and 0 <= request.budget <= MAX_BUDGET):
        problems.append(FieldViolation("budget", f"must be an amount 0..{MAX_BUDGET:g}"))
    has_max = request.HasField("max_discount")
    max_discount = request.max_discount if has_max else DEFAULT_MAX_DISCOUNT
    problems += _fraction(max_discount, "max_discount")
    problems += _fraction(request.min_margin, "min_margin", below_one=True)
    channels, bad_channels = _channels(request.channels, "channels")
    problems += bad_channels
    items = [
        InventoryItem(
            product_id=i.product_id,
            stock_on_hand=i.stock_on_hand,
            unit_cost=i.unit_cost,
            unit_price=i.unit_price,
            units_on_order=i.units_on_order,
            lead_time_days=i.lead_time_days,
            category=i.category.strip(),
        )
        for i in request.inventory
    ]
    if len(items) > max_rows:
        problems.append(FieldViolation("inventory", f"at most {max_rows} items per request"))
    else:
        problems += item_violations(items)
    _raise_if(problems)
    plan = PlanRequest(request.budget, horizon, max_discount, request.min_margin, channels)
    return plan, (items or None)


def draft_request(
    request: campaign_pb2.DraftMessagesRequest, fields: frozenset[str]
) -> tuple[Action, tuple[Channel, ...], dict[str, str]]:
    problems: list[FieldViolation] = []
    if not request.HasField("action"):
        problems.append(FieldViolation("action", "required: an action from PlanCampaigns"))
    a = request.action
    if a.objective not in {o.value for o in Objective} or a.objective == 0:
        problems.append(FieldViolation("action.objective", "required: a CampaignObjective"))
    elif a.objective in ADVISORY_OBJECTIVES:
        name = Objective(a.objective).name
        problems.append(
            FieldViolation("action.objective", f"{name} is advisory: customers get no message")
        )
    elif a.advisory:
        problems.append(
            FieldViolation("action.advisory", "an advisory action gets no customer message")
        )
    problems += _fraction(a.discount, "action.discount")
    channels, bad_channels = _channels(request.channels, "channels")
    problems += bad_channels
    for key, value in sorted(request.personalization.items()):
        path = f"personalization.{key}"
        if key not in fields:
            problems.append(
                FieldViolation(path, f"unknown field; known: {', '.join(sorted(fields))}")
            )
        elif len(value) > MAX_FIELD_VALUE or any(ord(ch) < 32 for ch in value):
            problems.append(FieldViolation(path, f"at most {MAX_FIELD_VALUE} characters, one line"))
    _raise_if(problems)
    return action_from_proto(a), channels, dict(request.personalization)


def save_request(
    request: campaign_pb2.SaveCampaignRequest, max_bytes: int
) -> campaign_pb2.SavedCampaign:
    """The campaign to store; INVALID_ARGUMENT naming each bad field, and the largest part
    (plan, drafts or notes) when the saved campaign would exceed `max_bytes`. Actions of an
    advisory objective are stored marked `advisory`, whoever built the plan."""
    problems: list[FieldViolation] = []
    name = request.name.strip()
    if not name or len(name) > MAX_NAME:
        problems.append(FieldViolation("name", f"required, at most {MAX_NAME} characters"))
    if not request.HasField("plan"):
        problems.append(FieldViolation("plan", "required: a PlanCampaigns response"))
    if len(request.notes) > MAX_NOTES:
        problems.append(FieldViolation("notes", f"at most {MAX_NOTES} characters"))
    for i, draft in enumerate(request.drafts):
        if draft.channel not in {c.value for c in ALL_CHANNELS}:
            problems.append(
                FieldViolation(f"drafts[{i}].channel", "must be EMAIL, SMS or WHATSAPP")
            )
        elif draft.channel == Channel.SMS and not fits_sms(draft.body):
            problems.append(
                FieldViolation(
                    f"drafts[{i}].body", "an SMS must fit one segment (160 GSM-7 characters)"
                )
            )
    _raise_if(problems)
    campaign = campaign_pb2.SavedCampaign(
        name=name, plan=request.plan, drafts=request.drafts, notes=request.notes
    )
    for action in campaign.plan.actions:  # a plan from a client that predates `advisory`
        action.advisory = action.advisory or action.objective in ADVISORY_OBJECTIVES
    size = campaign.ByteSize() + SAVED_FIELDS_BYTES
    if size > max_bytes:
        parts = {
            "plan": request.plan.ByteSize(),
            "drafts": sum(d.ByteSize() for d in request.drafts),
            "notes": len(request.notes.encode()),
        }
        largest = max(parts, key=lambda k: parts[k])
        raise InvalidArgument.field(
            largest,
            f"the saved campaign would be {size} bytes ({largest}: {parts[largest]});"
            f" at most {max_bytes} bytes",
        )
    return campaign


def page_size(request: campaign_pb2.ListCampaignsRequest) -> int:
    if not 0 <= request.page_size <= MAX_PAGE_SIZE:
        raise InvalidArgument.field(
            "page_size", f"must be 1..{MAX_PAGE_SIZE} (0 = {DEFAULT_PAGE_SIZE})"
        )
    return request.page_size or DEFAULT_PAGE_SIZE


# -- responses ---------------------------------------------------------------------------------
def action_from_proto(a: campaign_pb2.CampaignAction) -> Action:
    segment = a.target_segment if a.target_segment in {s.value for s in Segment} else 0
    channel = a.channel if a.channel in {c.value for c in Channel} else 0
    return Action(
        rank=a.rank,
        objective=Objective(a.objective),
        product_id=a.product_id,
        category=a.category,
        segment=Segment(segment),
        segment_name=a.target_segment_name,
        audience_size=a.audience_size,
        channel=Channel(channel),
        discount=a.discount,
        expected_extra_units=a.expected_extra_units,
        expected_revenue=a.expected_revenue,
        expected_margin=a.expected_margin,
        budget_used=a.budget_used,
        rationale=a.rationale,
        advisory=a.advisory,
    )


def action_to_proto(a: Action) -> campaign_pb2.CampaignAction:
    return campaign_pb2.CampaignAction(
        rank=a.rank,
        objective=a.objective.value,
        product_id=a.product_id,
        category=a.category,
        target_segment=a.segment.value,
        target_segment_name=a.segment_name,
        audience_size=a.audience_size,
        channel=a.channel.value,
        discount=a.discount,
        expected_extra_units=a.expected_extra_units,
        expected_revenue=a.expected_revenue,
        expected_margin=a.expected_margin,
        budget_used=a.budget_used,
        rationale=a.rationale,
        advisory=a.advisory,
    )


def assumptions_to_proto(a: Assumptions) -> campaign_pb2.UpliftAssumptions:
    return campaign_pb2.UpliftAssumptions(
        price_elasticity_by_category=dict(a.price_elasticity_by_category),
        response_rate_by_segment=dict(a.response_rate_by_segment),
        contact_cost_by_channel=dict(a.contact_cost_by_channel),
        stockout_cover_days=a.stockout_cover_days,
        overstock_cover_days=a.overstock_cover_days,
        dead_stock_daily_units=a.dead_stock_daily_units,
    )


def position_to_proto(p: Position) -> campaign_pb2.ProductInventory:
    return campaign_pb2.ProductInventory(
        product_id=p.item.product_id,
        category=p.item.category,
        status=p.status.value,
        days_of_cover=p.days_of_cover,
        forecast_daily_units=p.forecast_daily_units,
    )


def plan_to_proto(
    plan: Plan,
    assumptions: Assumptions,
    currency: str,
    models: Mapping[str, int],
) -> campaign_pb2.PlanCampaignsResponse:
    return campaign_pb2.PlanCampaignsResponse(
        actions=[action_to_proto(a) for a in plan.actions],
        budget=plan.budget,
        budget_used=plan.budget_used,
        expected_margin=plan.expected_margin,
        currency=currency,
        algorithm=plan.algorithm,
        assumptions=assumptions_to_proto(assumptions),
        inventory=[position_to_proto(p) for p in plan.positions],
        models=[common_pb2.ModelRef(name=n, version=v) for n, v in sorted(models.items())],
    )


def draft_to_proto(d: Draft) -> campaign_pb2.MessageDraft:
    return campaign_pb2.MessageDraft(channel=d.channel.value, subject=d.subject, body=d.body)

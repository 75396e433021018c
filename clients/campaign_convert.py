"""Campaign wire conversions, both ways: a plan read back from the server converts to the wire
form losslessly, so it can be saved (or drafted from) as it is.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from clients.campaign_types import (
    CampaignAction,
    Forecast,
    MessageDraft,
    Plan,
    ProductForecast,
    ProductInventory,
    SavedCampaign,
    UpliftAssumptions,
)
from clients.common import ModelRef, RowFailure
from crm.v1 import campaign_pb2, common_pb2, segmentation_pb2


def _short(enum: Any, value: int, prefix: str) -> str:
    try:
        return str(enum.Name(value)).removeprefix(prefix)
    except ValueError:
        return str(value)


def _value(enum: Any, name: str, prefix: str) -> int:
    key = name.upper()
    return int(enum.Value(key if key.startswith(prefix) else prefix + key))


def _status(value: int) -> str:
    return _short(campaign_pb2.InventoryStatus, value, "INVENTORY_STATUS_")


def _objective(value: int) -> str:
    return _short(campaign_pb2.CampaignObjective, value, "CAMPAIGN_OBJECTIVE_")


def _channel(value: int) -> str:
    return _short(campaign_pb2.Channel, value, "CHANNEL_")


def _segment(value: int) -> str:
    return _short(segmentation_pb2.Segment, value, "SEGMENT_")


def channel_value(name: str) -> int:
    """campaign_pb2.Channel of "EMAIL", "email" or "CHANNEL_EMAIL"."""
    return _value(campaign_pb2.Channel, name, "CHANNEL_")


def forecast_from_proto(r: campaign_pb2.ForecastDemandResponse) -> Forecast:
    return Forecast(
        model=ModelRef.from_proto(r.model),
        start_date=r.start_date.ToDatetime().date(),
        forecasts=tuple(
            ProductForecast(
                f.product_id,
                tuple(f.daily_units),
                f.total_units,
                RowFailure.from_proto(f.error) if f.HasField("error") else None,
            )
            for f in r.forecasts
        ),
    )


# An action's fields that cross the wire as they are, both ways; its enums go by name.
_ACTION_AS_IS = (
    "rank", "product_id", "category", "target_segment_name", "audience_size", "discount",
    "expected_extra_units", "expected_revenue", "expected_margin", "budget_used", "rationale",
    "advisory",
)  # fmt: skip


def _as_is(a: CampaignAction | campaign_pb2.CampaignAction) -> dict[str, Any]:
    return {name: getattr(a, name) for name in _ACTION_AS_IS}


def action_from_proto(a: campaign_pb2.CampaignAction) -> CampaignAction:
    return CampaignAction(
        objective=_objective(a.objective),
        target_segment=_segment(a.target_segment),
        channel=_channel(a.channel),
        **_as_is(a),
    )


def action_to_proto(a: CampaignAction) -> campaign_pb2.CampaignAction:
    return campaign_pb2.CampaignAction(
        objective=_value(campaign_pb2.CampaignObjective, a.objective, "CAMPAIGN_OBJECTIVE_"),
        target_segment=_value(segmentation_pb2.Segment, a.target_segment, "SEGMENT_"),
        channel=channel_value(a.channel),
        **_as_is(a),
    )


def plan_from_proto(p: campaign_pb2.PlanCampaignsResponse) -> Plan:
    a = p.assumptions
    return Plan(
        actions=tuple(action_from_proto(x) for x in p.actions),
        budget=p.budget,
        budget_used=p.budget_used,
        expected_margin=p.expected_margin,
        currency=p.currency,
        algorithm=p.algorithm,
        assumptions=UpliftAssumptions(
            price_elasticity_by_category=dict(sorted(a.price_elasticity_by_category.items())),
            response_rate_by_segment=dict(sorted(a.response_rate_by_segment.items())),
            contact_cost_by_channel=dict(sorted(a.contact_cost_by_channel.items())),
            stockout_cover_days=a.stockout_cover_days,
            overstock_cover_days=a.overstock_cover_days,
            dead_stock_daily_units=a.dead_stock_daily_units,
        ),
        inventory=tuple(
            ProductInventory(
                i.product_id, i.category, _status(i.status), i.days_of_cover, i.forecast_daily_units
            )
            for i in p.inventory
        ),
        models=tuple(ModelRef.from_proto(m) for m in p.models),
    )


def plan_to_proto(p: Plan) -> campaign_pb2.PlanCampaignsResponse:
    a = p.assumptions
    return campaign_pb2.PlanCampaignsResponse(
        actions=[action_to_proto(x) for x in p.actions],
        budget=p.budget,
        budget_used=p.budget_used,
        expected_margin=p.expected_margin,
        currency=p.currency,
        algorithm=p.algorithm,
        assumptions=campaign_pb2.UpliftAssumptions(
            price_elasticity_by_category=dict(a.price_elasticity_by_category),
            response_rate_by_segment=dict(a.response_rate_by_segment),
            contact_cost_by_channel=dict(a.contact_cost_by_channel),
            stockout_cover_days=a.stockout_cover_days,
            overstock_cover_days=a.overstock_cover_days,
            dead_stock_daily_units=a.dead_stock_daily_units,
        ),
        inventory=[
            campaign_pb2.ProductInventory(
                product_id=i.product_id,
                category=i.category,
                status=_value(campaign_pb2.InventoryStatus, i.status, "INVENTORY_STATUS_"),
                days_of_cover=i.days_of_cover,
                forecast_daily_units=i.forecast_daily_units,
            )
            for i in p.inventory
        ],
        models=[common_pb2.ModelRef(name=m.name, version=m.version) for m in p.models],
    )


def draft_from_proto(d: campaign_pb2.MessageDraft) -> MessageDraft:
    return MessageDraft(_channel(d.channel), d.subject, d.body)


def draft_to_proto(d: MessageDraft) -> campaign_pb2.MessageDraft:
    return campaign_pb2.MessageDraft(
        channel=channel_value(d.channel), subject=d.subject, body=d.body
    )


def saved_from_proto(c: campaign_pb2.SavedCampaign) -> SavedCampaign:
    return SavedCampaign(
        id=c.id,
        name=c.name,
        created_at=c.created_at.ToDatetime(tzinfo=UTC),
        plan=plan_from_proto(c.plan),
        drafts=tuple(draft_from_proto(d) for d in c.drafts),
        notes=c.notes,
    )

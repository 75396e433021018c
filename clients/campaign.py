"""Typed client for CampaignService: forecasts, plans, drafts and saved campaigns as dataclasses.

Enums travel as their short names ("CLEAR_OVERSTOCK", "EMAIL", "LOYAL"); money is in the plan's
`currency`. A plan read back from the server converts to the wire form losslessly, so it can be
saved (or drafted from) as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import grpc

from clients.calls import Caller
from clients.common import ModelRef, RowFailure
from crm.inventory import InventoryItem, parse_inventory_csv
from crm.v1 import campaign_pb2, campaign_pb2_grpc, common_pb2, segmentation_pb2


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


@dataclass(frozen=True)
class ProductForecast:
    product_id: str
    daily_units: tuple[float, ...]
    total_units: float
    error: RowFailure | None = None


@dataclass(frozen=True)
class Forecast:
    model: ModelRef
    start_date: date
    forecasts: tuple[ProductForecast, ...]


@dataclass(frozen=True)
class CampaignAction:
    rank: int
    objective: str  # "CLEAR_OVERSTOCK" | "MOVE_DEAD_STOCK" | "PROTECT_STOCKOUT" | ...
    product_id: str
    category: str
    target_segment: str  # "VIP" | "LOYAL" | ... | "UNSPECIFIED"
    target_segment_name: str
    audience_size: int
    channel: str  # "EMAIL" | "SMS" | "WHATSAPP" | "UNSPECIFIED"
    discount: float
    expected_extra_units: float
    expected_revenue: float
    expected_margin: float
    budget_used: float
    rationale: str


@dataclass(frozen=True)
class ProductInventory:
    product_id: str
    category: str
    status: str  # "STOCKOUT_RISK" | "HEALTHY" | "OVERSTOCK" | "DEAD_STOCK" | "UNSPECIFIED"
    days_of_cover: float
    forecast_daily_units: float


@dataclass(frozen=True)
class UpliftAssumptions:
    price_elasticity_by_category: Mapping[str, float]
    response_rate_by_segment: Mapping[str, float]
    contact_cost_by_channel: Mapping[str, float]
    stockout_cover_days: float
    overstock_cover_days: float
    dead_stock_daily_units: float


@dataclass(frozen=True)
class Plan:
    actions: tuple[CampaignAction, ...]
    budget: float
    budget_used: float
    expected_margin: float
    currency: str
    algorithm: str
    assumptions: UpliftAssumptions
    inventory: tuple[ProductInventory, ...]
    models: tuple[ModelRef, ...]


@dataclass(frozen=True)
class MessageDraft:
    channel: str  # "EMAIL" | "SMS" | "WHATSAPP"
    subject: str
    body: str


@dataclass(frozen=True)
class Drafts:
    drafts: tuple[MessageDraft, ...]
    writer: str


@dataclass(frozen=True)
class SavedCampaign:
    id: str
    name: str
    created_at: datetime
    plan: Plan
    drafts: tuple[MessageDraft, ...]
    notes: str


@dataclass(frozen=True)
class CampaignPage:
    campaigns: tuple[SavedCampaign, ...]
    next_page_token: str  # "" when there are no more


# -- wire conversions --------------------------------------------------------------------------
def action_from_proto(a: campaign_pb2.CampaignAction) -> CampaignAction:
    return CampaignAction(
        rank=a.rank,
        objective=_objective(a.objective),
        product_id=a.product_id,
        category=a.category,
        target_segment=_segment(a.target_segment),
        target_segment_name=a.target_segment_name,
        audience_size=a.audience_size,
        channel=_channel(a.channel),
        discount=a.discount,
        expected_extra_units=a.expected_extra_units,
        expected_revenue=a.expected_revenue,
        expected_margin=a.expected_margin,
        budget_used=a.budget_used,
        rationale=a.rationale,
    )


def action_to_proto(a: CampaignAction) -> campaign_pb2.CampaignAction:
    return campaign_pb2.CampaignAction(
        rank=a.rank,
        objective=_value(campaign_pb2.CampaignObjective, a.objective, "CAMPAIGN_OBJECTIVE_"),
        product_id=a.product_id,
        category=a.category,
        target_segment=_value(segmentation_pb2.Segment, a.target_segment, "SEGMENT_"),
        target_segment_name=a.target_segment_name,
        audience_size=a.audience_size,
        channel=_value(campaign_pb2.Channel, a.channel, "CHANNEL_"),
        discount=a.discount,
        expected_extra_units=a.expected_extra_units,
        expected_revenue=a.expected_revenue,
        expected_margin=a.expected_margin,
        budget_used=a.budget_used,
        rationale=a.rationale,
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


def _draft_from_proto(d: campaign_pb2.MessageDraft) -> MessageDraft:
    return MessageDraft(_channel(d.channel), d.subject, d.body)


def _draft_to_proto(d: MessageDraft) -> campaign_pb2.MessageDraft:
    channel = _value(campaign_pb2.Channel, d.channel, "CHANNEL_")
    return campaign_pb2.MessageDraft(channel=channel, subject=d.subject, body=d.body)


def _saved_from_proto(c: campaign_pb2.SavedCampaign) -> SavedCampaign:
    return SavedCampaign(
        id=c.id,
        name=c.name,
        created_at=c.created_at.ToDatetime(tzinfo=UTC),
        plan=plan_from_proto(c.plan),
        drafts=tuple(_draft_from_proto(d) for d in c.drafts),
        notes=c.notes,
    )


def read_inventory_csv(path: Path | str) -> list[InventoryItem]:
    """An inventory CSV (crm.inventory format); ValueError naming the file and line."""
    with open(path, newline="", encoding="utf-8") as fh:
        return parse_inventory_csv(fh.read(), str(path))


class CampaignClient:
    """CampaignService calls with a default deadline; failures raise CrmError."""

    def __init__(
        self, channel: grpc.Channel, timeout: float = 10.0, *, call: Caller | None = None
    ) -> None:
        """`call`: share a CrmClient's deadline and error mapping instead of `timeout`."""
        self.stub = campaign_pb2_grpc.CampaignServiceStub(channel)
        self._call = call or Caller(timeout)

    def forecast_demand(self, product_ids: Iterable[str] = (), horizon_days: int = 0) -> Forecast:
        """Units per day for the next `horizon_days` (0 = 7); no ids = every known product."""
        r = self._call(
            self.stub.ForecastDemand,
            campaign_pb2.ForecastDemandRequest(
                product_ids=list(product_ids), horizon_days=horizon_days
            ),
        )
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

    def plan_campaigns(
        self,
        budget: float,
        *,
        horizon_days: int = 0,
        max_discount: float = 0.3,
        min_margin: float = 0.0,
        channels: Sequence[str] = (),
        inventory: Iterable[InventoryItem] = (),
    ) -> Plan:
        """A plan within `budget`; no inventory = the server's default snapshot."""
        request = campaign_pb2.PlanCampaignsRequest(
            budget=budget,
            horizon_days=horizon_days,
            max_discount=max_discount,
            min_margin=min_margin,
            channels=[_value(campaign_pb2.Channel, c, "CHANNEL_") for c in channels],
            inventory=[campaign_pb2.InventoryItem(**vars(i)) for i in inventory],
        )
        return plan_from_proto(self._call(self.stub.PlanCampaigns, request))

    def draft_messages(
        self,
        action: CampaignAction,
        channels: Sequence[str] = (),
        personalization: Mapping[str, str] | None = None,
    ) -> Drafts:
        r = self._call(
            self.stub.DraftMessages,
            campaign_pb2.DraftMessagesRequest(
                action=action_to_proto(action),
                channels=[_value(campaign_pb2.Channel, c, "CHANNEL_") for c in channels],
                personalization=dict(personalization or {}),
            ),
        )
        return Drafts(tuple(_draft_from_proto(d) for d in r.drafts), r.writer)

    def save_campaign(
        self, name: str, plan: Plan, drafts: Iterable[MessageDraft] = (), notes: str = ""
    ) -> SavedCampaign:
        """Saves once (never retried automatically, so a retry cannot save twice)."""
        r = self._call(
            self.stub.SaveCampaign,
            campaign_pb2.SaveCampaignRequest(
                name=name,
                plan=plan_to_proto(plan),
                drafts=[_draft_to_proto(d) for d in drafts],
                notes=notes,
            ),
        )
        return _saved_from_proto(r.campaign)

    def list_campaigns(self, page_size: int = 0, page_token: str = "") -> CampaignPage:
        r = self._call(
            self.stub.ListCampaigns,
            campaign_pb2.ListCampaignsRequest(page_size=page_size, page_token=page_token),
        )
        return CampaignPage(tuple(_saved_from_proto(c) for c in r.campaigns), r.next_page_token)

    def iter_campaigns(self, page_size: int = 50) -> Iterator[SavedCampaign]:
        """Every saved campaign, newest first, fetching page by page."""
        token = ""
        while True:
            page = self.list_campaigns(page_size, token)
            yield from page.campaigns
            if not page.next_page_token:
                return
            token = page.next_page_token

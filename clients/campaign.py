"""CampaignClient: the CampaignService calls, returning clients.campaign_types.

Enums travel as their short names ("CLEAR_OVERSTOCK", "EMAIL", "LOYAL"); a plan read back from
the server can be saved (or drafted from) as it is (clients.campaign_convert).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import grpc

from clients import campaign_convert as convert
from clients.calls import Caller
from clients.campaign_convert import plan_from_proto, plan_to_proto
from clients.campaign_types import (
    CampaignAction,
    CampaignPage,
    Drafts,
    Forecast,
    MessageDraft,
    Plan,
    SavedCampaign,
)
from crm.inventory import InventoryItem, parse_inventory_csv
from crm.v1 import campaign_pb2, campaign_pb2_grpc

# Imported from here by callers that build or round-trip plans.
__all__ = [
    "CampaignClient",
    "InventoryItem",
    "plan_from_proto",
    "plan_to_proto",
    "read_inventory_csv",
]


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
        request = campaign_pb2.ForecastDemandRequest(
            product_ids=list(product_ids), horizon_days=horizon_days
        )
        return convert.forecast_from_proto(self._call(self.stub.ForecastDemand, request))

    def plan_campaigns(
        self,
        budget: float,
        *,
        horizon_days: int = 0,
        max_discount: float | None = None,
        min_margin: float = 0.0,
        channels: Sequence[str] = (),
        inventory: Iterable[InventoryItem] = (),
    ) -> Plan:
        """A plan within `budget`; no inventory = the server's default snapshot.

        `max_discount` None leaves the field unset: the server's documented default
        (PlanCampaignsRequest in protos/crm/v1/campaign.proto); 0 asks for no discount at all.
        """
        request = campaign_pb2.PlanCampaignsRequest(
            budget=budget,
            horizon_days=horizon_days,
            max_discount=max_discount,
            min_margin=min_margin,
            channels=[convert.channel_value(c) for c in channels],
            inventory=[campaign_pb2.InventoryItem(**vars(i)) for i in inventory],
        )
        return plan_from_proto(self._call(self.stub.PlanCampaigns, request))

    def draft_messages(
        self,
        action: CampaignAction,
        channels: Sequence[str] = (),
        personalization: Mapping[str, str] | None = None,
    ) -> Drafts:
        request = campaign_pb2.DraftMessagesRequest(
            action=convert.action_to_proto(action),
            channels=[convert.channel_value(c) for c in channels],
            personalization=dict(personalization or {}),
        )
        r = self._call(self.stub.DraftMessages, request)
        return Drafts(tuple(convert.draft_from_proto(d) for d in r.drafts), r.writer)

    def save_campaign(
        self, name: str, plan: Plan, drafts: Iterable[MessageDraft] = (), notes: str = ""
    ) -> SavedCampaign:
        """Saves once (never retried automatically, so a retry cannot save twice)."""
        request = campaign_pb2.SaveCampaignRequest(
            name=name,
            plan=plan_to_proto(plan),
            drafts=[convert.draft_to_proto(d) for d in drafts],
            notes=notes,
        )
        return convert.saved_from_proto(self._call(self.stub.SaveCampaign, request).campaign)

    def list_campaigns(self, page_size: int = 0, page_token: str = "") -> CampaignPage:
        request = campaign_pb2.ListCampaignsRequest(page_size=page_size, page_token=page_token)
        r = self._call(self.stub.ListCampaigns, request)
        campaigns = tuple(convert.saved_from_proto(c) for c in r.campaigns)
        return CampaignPage(campaigns, r.next_page_token)

    def iter_campaigns(self, page_size: int = 50) -> Iterator[SavedCampaign]:
        """Every saved campaign, newest first, fetching page by page."""
        token = ""
        while True:
            page = self.list_campaigns(page_size, token)
            yield from page.campaigns
            if not page.next_page_token:
                return
            token = page.next_page_token

"""CampaignService: converts between crm.v1 campaign messages and the campaign handlers
(forecasts and plans: `server.dataplane.campaign`); drafts messages; saves and lists campaigns.
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc
import numpy as np
from google.rpc import code_pb2

from crm.artifacts import KIND_INVENTORY, KIND_PRODUCTS
from crm.v1 import campaign_pb2, campaign_pb2_grpc, common_pb2
from server.campaign import wire
from server.campaign.assumptions import ASSUMPTIONS_FILE, Assumptions, load_assumptions
from server.campaign.drafts import MessageWriter, NotDraftable, TemplateWriter, draft_messages
from server.campaign.forecast import load_product_snapshot
from server.campaign.inventory import load_inventory_snapshot
from server.campaign.store import FIELD_FRAMING, BadPageToken
from server.config import ServerConfig
from server.dataplane.base import Plane
from server.dataplane.campaign import CampaignHandlers
from server.errors import InvalidArgument, echo
from server.models.artifact import Loader
from server.services.rows import model_ref
from server.stores import open_campaign_store

# Registry loaders this service needs for its non-ONNX artifacts (besides feature_snapshot).
LOADERS: Mapping[str, Loader] = {
    KIND_INVENTORY: load_inventory_snapshot,
    KIND_PRODUCTS: load_product_snapshot,
}


class CampaignServicer(campaign_pb2_grpc.CampaignServiceServicer):
    def __init__(
        self,
        config: ServerConfig,
        plane: Plane,
        *,
        writer: MessageWriter | None = None,
        assumptions: Assumptions | None = None,
        namespace: str = "",
    ) -> None:
        """`namespace`: the tenant whose campaigns these are (server.stores picks the backend)."""
        self._max_rows = config.max_request_rows
        self._assumptions = assumptions or load_assumptions(config.data_dir / ASSUMPTIONS_FILE)
        self._writer: MessageWriter = writer or TemplateWriter()
        self._store = open_campaign_store(config, namespace)
        # A ListCampaigns page carries at most this many bytes of campaigns (room is left for
        # the token); a saved campaign is never larger, so every one fits a page whole.
        self._page_bytes = config.max_message_bytes - wire.PAGE_OVERHEAD_BYTES
        self._max_campaign_bytes = min(
            config.max_campaign_kib * 1024, self._page_bytes - FIELD_FRAMING
        )
        self._handlers = CampaignHandlers(plane, self._assumptions)

    def close(self) -> None:
        self._store.close()

    # -- RPCs ------------------------------------------------------------------------------
    def ForecastDemand(
        self, request: campaign_pb2.ForecastDemandRequest, context: grpc.ServicerContext
    ) -> campaign_pb2.ForecastDemandResponse:
        wanted, horizon = wire.forecast_request(request, self._max_rows)
        forecasts = self._handlers.forecasts()
        products = forecasts.products
        response = campaign_pb2.ForecastDemandResponse(model=model_ref(forecasts.model))
        response.start_date.FromSeconds(
            int(products.origin.astype("datetime64[s]").astype(np.int64))
        )
        for i, product_id in enumerate(wanted or products.product_ids):
            daily = forecasts.daily(product_id, horizon)
            forecast = response.forecasts.add(product_id=product_id)
            if daily is None:
                forecast.error.CopyFrom(
                    common_pb2.RowError(
                        code=code_pb2.NOT_FOUND,
                        message=f"unknown product {echo(product_id)}",
                        field=f"product_ids[{i}]",
                    )
                )
                continue
            forecast.daily_units.extend(float(u) for u in daily)
            forecast.total_units = float(daily.sum())
        return response

    def PlanCampaigns(
        self, request: campaign_pb2.PlanCampaignsRequest, context: grpc.ServicerContext
    ) -> campaign_pb2.PlanCampaignsResponse:
        plan_request, items = wire.plan_request(request, self._max_rows)
        planned = self._handlers.plan(plan_request, items)
        return wire.plan_to_proto(planned.plan, self._assumptions, planned.currency, planned.models)

    def DraftMessages(
        self, request: campaign_pb2.DraftMessagesRequest, context: grpc.ServicerContext
    ) -> campaign_pb2.DraftMessagesResponse:
        action, channels, fields = wire.draft_request(request, self._writer.fields)
        try:
            drafts = draft_messages(self._writer, action, channels, fields)
        except NotDraftable as err:
            raise InvalidArgument.field("action.objective", str(err)) from None
        return campaign_pb2.DraftMessagesResponse(
            drafts=[wire.draft_to_proto(d) for d in drafts], writer=self._writer.name
        )

    def SaveCampaign(
        self, request: campaign_pb2.SaveCampaignRequest, context: grpc.ServicerContext
    ) -> campaign_pb2.SaveCampaignResponse:
        campaign = wire.save_request(request, self._max_campaign_bytes)
        return campaign_pb2.SaveCampaignResponse(campaign=self._store.save(campaign))

    def ListCampaigns(
        self, request: campaign_pb2.ListCampaignsRequest, context: grpc.ServicerContext
    ) -> campaign_pb2.ListCampaignsResponse:
        size = wire.page_size(request)
        try:
            campaigns, token = self._store.page(size, request.page_token, self._page_bytes)
        except BadPageToken as err:
            raise InvalidArgument.field("page_token", str(err)) from None
        return campaign_pb2.ListCampaignsResponse(campaigns=campaigns, next_page_token=token)

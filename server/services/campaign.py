"""CampaignService: demand forecasts, inventory-aware campaign plans, message drafts, saved plans.

Artifacts used through the registry: `demand` (ONNX), `products` (product snapshot: recent daily
units and catalogue), `inventory` (the default inventory snapshot), `segmentation` and `churn`
(ONNX) over `features` (the customer feature snapshot). Forecasts and segment audiences are
computed once per artifact-version combination and cached; a plan itself is pure arithmetic.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping

import grpc
import numpy as np
from google.rpc import code_pb2

from crm.artifacts import KIND_INVENTORY, KIND_PRODUCTS
from crm.v1 import campaign_pb2, campaign_pb2_grpc, common_pb2
from server.campaign import wire
from server.campaign.assumptions import ASSUMPTIONS_FILE, Assumptions, load_assumptions
from server.campaign.audiences import build_profiles
from server.campaign.drafts import MessageWriter, NotDraftable, TemplateWriter, draft_messages
from server.campaign.forecast import (
    ProductHistory,
    forecast_all,
    load_product_snapshot,
    mean_daily,
)
from server.campaign.inventory import diagnose_all, load_inventory_snapshot
from server.campaign.planner import plan
from server.campaign.store import FIELD_FRAMING, STORE_FILE, BadPageToken, CampaignStore
from server.campaign.types import InventoryItem, Segment, SegmentProfile
from server.config import ServerConfig
from server.dataplane.base import ModelId, Plane, VersionCache
from server.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable, echo
from server.registry import LoadedArtifact, Loader, ModelRegistry
from server.services.rows import model_ref
from server.services.segmentation import segment_enum
from server.snapshot import FeatureSnapshot

DEMAND = "demand"
PRODUCTS = "products"
INVENTORY = "inventory"
SEGMENTATION = "segmentation"
CHURN = "churn"
FEATURES = "features"

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
    ) -> None:
        self._plane = plane
        self._registry = plane.registry
        self._max_rows = config.max_batch_rows
        self._assumptions = assumptions or load_assumptions(config.data_dir / ASSUMPTIONS_FILE)
        self._writer: MessageWriter = writer or TemplateWriter()
        self._store = CampaignStore(config.data_dir / STORE_FILE)
        # A ListCampaigns page carries at most this many bytes of campaigns (room is left for
        # the token); a saved campaign is never larger, so every one fits a page whole.
        self._page_bytes = config.max_message_bytes - wire.PAGE_OVERHEAD_BYTES
        self._max_campaign_bytes = min(
            config.max_campaign_kib * 1024, self._page_bytes - FIELD_FRAMING
        )
        self._cache = VersionCache()

    def close(self) -> None:
        self._store.close()

    # -- artifacts -------------------------------------------------------------------------
    def _artifact(self, name: str, payload_type: type | None = None) -> LoadedArtifact:
        try:
            artifact = self._registry.get(name)
        except NotFound:
            raise Unavailable(f"artifact {name!r} is not loaded") from None
        if payload_type is not None and not isinstance(artifact.payload, payload_type):
            raise FailedPrecondition(f"artifact {name!r} is not a {payload_type.__name__}")
        return artifact

    def _forecasts(self) -> tuple[LoadedArtifact, ProductHistory, np.ndarray]:
        demand = self._artifact(DEMAND)
        products = self._artifact(PRODUCTS, ProductHistory)
        key: Hashable = ("forecast", demand.version, products.version)

        def compute() -> np.ndarray:
            try:
                return forecast_all(
                    lambda rows: self._plane.run(demand, rows, None),
                    demand.spec.categories,
                    products.payload,
                )
            except ValueError as err:
                raise FailedPrecondition(
                    f"demand model and product snapshot disagree: {err}"
                ) from None

        return demand, products.payload, self._cache.get(key, compute)

    def _segments(self) -> tuple[list[SegmentProfile], dict[str, int]]:
        features = self._artifact(FEATURES, FeatureSnapshot)
        segmentation = self._artifact(SEGMENTATION)
        churn = self._artifact(CHURN)
        versions = {a.name: a.version for a in (features, segmentation, churn)}
        key: Hashable = ("segments", features.version, segmentation.version, churn.version)

        def compute() -> list[SegmentProfile]:
            snapshot: FeatureSnapshot = features.payload
            if not len(snapshot):
                return []
            try:
                run = self._plane.run
                clusters = run(
                    segmentation, snapshot.matrix(segmentation.model.feature_names), None
                )["cluster"]
                churn_p = run(churn, snapshot.matrix(churn.model.feature_names), None)[
                    "probability"
                ]
                return build_profiles(
                    snapshot.feature_names,
                    snapshot.values,
                    np.asarray(clusters),
                    _segment_names(segmentation),
                    churn_probability=np.asarray(churn_p),
                    churn_threshold=churn.spec.risk_thresholds[1],
                )
            except (KeyError, ValueError) as err:
                raise FailedPrecondition(f"cannot build segment audiences: {err}") from None

        return self._cache.get(key, compute), versions

    def _default_inventory(self) -> tuple[list[InventoryItem], int]:
        try:
            artifact = self._registry.get(INVENTORY)
        except (NotFound, Unavailable):
            raise FailedPrecondition(
                "no inventory in the request and no default inventory snapshot is loaded"
            ) from None
        return list(artifact.payload), artifact.version

    # -- RPCs ------------------------------------------------------------------------------
    def ForecastDemand(
        self, request: campaign_pb2.ForecastDemandRequest, context: grpc.ServicerContext
    ) -> campaign_pb2.ForecastDemandResponse:
        wanted, horizon = wire.forecast_request(request, self._max_rows)
        demand, products, table = self._forecasts()
        response = campaign_pb2.ForecastDemandResponse(model=model_ref(ModelId.of(demand)))
        response.start_date.FromSeconds(
            int(products.origin.astype("datetime64[s]").astype(np.int64))
        )
        for i, product_id in enumerate(wanted or products.product_ids):
            row = products.index.get(product_id)
            forecast = response.forecasts.add(product_id=product_id)
            if row is None:
                forecast.error.CopyFrom(
                    common_pb2.RowError(
                        code=code_pb2.NOT_FOUND,
                        message=f"unknown product {echo(product_id)}",
                        field=f"product_ids[{i}]",
                    )
                )
                continue
            daily = table[row, :horizon]
            forecast.daily_units.extend(float(u) for u in daily)
            forecast.total_units = float(daily.sum())
        return response

    def PlanCampaigns(
        self, request: campaign_pb2.PlanCampaignsRequest, context: grpc.ServicerContext
    ) -> campaign_pb2.PlanCampaignsResponse:
        plan_request, items = wire.plan_request(request, self._max_rows)
        demand, products, table = self._forecasts()
        models = {DEMAND: demand.version, PRODUCTS: products.version}
        if items is None:
            items, models[INVENTORY] = self._default_inventory()
        items = [
            i if i.category else dataclasses.replace(i, category=products.category_of(i.product_id))
            for i in items
        ]
        means = mean_daily(table, plan_request.horizon_days)
        daily = {
            i.product_id: float(means[row])
            for i in items
            if (row := products.index.get(i.product_id)) is not None
        }
        positions = diagnose_all(items, daily, self._assumptions)
        segments, versions = self._segments()
        models.update(versions)
        currency = _currency(demand, self._registry)
        result = plan(positions, segments, plan_request, self._assumptions, currency)
        return wire.plan_to_proto(result, self._assumptions, currency, models)

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


def _segment_names(segmentation: LoadedArtifact) -> dict[int, tuple[Segment, str]]:
    """Cluster id -> (segment, display name), from the segmentation manifest."""
    return {
        cluster: (Segment(segment_enum(segment.name)), segment.name)
        for cluster, segment in segmentation.spec.segments.items()
    }


def _currency(demand: LoadedArtifact, registry: ModelRegistry) -> str:
    """The data's currency, as training recorded it (demand model, then any served artifact)."""
    for artifact in (demand, *registry.serving().values()):
        currency = (artifact.manifest.get("serving") or {}).get("currency")
        if currency:
            return str(currency)
    return ""

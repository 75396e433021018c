"""The campaign handlers: demand forecasts per product, and campaign plans under a budget.

Artifacts used through the registry: `demand` (ONNX), `products` (recent daily units and the
catalogue), `inventory` (the default inventory snapshot), `segmentation` and `churn` (ONNX)
over `features` (the customer feature snapshot). Every model runs through the executor.
Forecasts and segment audiences are computed once per artifact-version combination and
cached; a plan itself is pure arithmetic (`server.campaign.planner`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from server.campaign.assumptions import Assumptions
from server.campaign.audiences import build_profiles
from server.campaign.forecast import ProductHistory, forecast_all, mean_daily
from server.campaign.inventory import diagnose_all
from server.campaign.planner import Plan, PlanRequest, plan
from server.campaign.types import InventoryItem, Segment, SegmentProfile
from server.dataplane.base import ModelId, Plane, VersionCache
from server.errors import FailedPrecondition, NotFound, Unavailable, echo
from server.models.artifact import LoadedArtifact
from server.models.snapshot import FeatureSnapshot

DEMAND = "demand"
PRODUCTS = "products"
INVENTORY = "inventory"
SEGMENTATION = "segmentation"
CHURN = "churn"
FEATURES = "features"


@dataclass(frozen=True)
class Forecasts:
    """Expected units per product and day over the next days, from one demand model run."""

    model: ModelId
    products: ProductHistory
    products_version: int
    table: np.ndarray  # [P, 7] units per product and day, >= 0

    def daily(self, product_id: str, horizon: int) -> np.ndarray | None:
        row = self.products.index.get(product_id)
        return None if row is None else self.table[row, :horizon]


@dataclass(frozen=True)
class PlannedCampaigns:
    plan: Plan
    currency: str
    models: dict[str, int]  # every artifact the plan used -> version


class CampaignHandlers:
    def __init__(self, plane: Plane, assumptions: Assumptions) -> None:
        self.plane = plane
        self.assumptions = assumptions
        self.cache = VersionCache()

    def _artifact(self, name: str, payload_type: type | None = None) -> LoadedArtifact:
        try:
            artifact = self.plane.registry.get(name)
        except NotFound:
            raise Unavailable(f"artifact {echo(name)} is not loaded") from None
        if payload_type is not None and not isinstance(artifact.payload, payload_type):
            raise FailedPrecondition(f"artifact {echo(name)} is not a {payload_type.__name__}")
        return artifact

    def forecasts(self) -> Forecasts:
        demand = self._artifact(DEMAND)
        products = self._artifact(PRODUCTS, ProductHistory)
        key: Hashable = ("forecast", demand.version, products.version)

        def compute() -> np.ndarray:
            try:
                return forecast_all(
                    lambda rows: self.plane.run(demand, rows, None),
                    demand.spec.categories,
                    products.payload,
                )
            except ValueError as err:
                raise FailedPrecondition(
                    f"demand model and product snapshot disagree: {err}"
                ) from None

        return Forecasts(
            ModelId.of(demand), products.payload, products.version, self.cache.get(key, compute)
        )

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
            run = self.plane.run
            try:
                clusters = run(
                    segmentation, snapshot.matrix(segmentation.model.feature_names), None
                )["cluster"]
                churn_p = run(churn, snapshot.matrix(churn.model.feature_names), None)
                return build_profiles(
                    snapshot.feature_names,
                    snapshot.values,
                    np.asarray(clusters),
                    {
                        cluster: (Segment.named(s.name), s.name)
                        for cluster, s in segmentation.spec.segments.items()
                    },
                    churn_probability=np.asarray(churn_p["probability"]),
                    churn_threshold=churn.spec.risk_thresholds[1],
                )
            except (KeyError, ValueError) as err:
                raise FailedPrecondition(f"cannot build segment audiences: {err}") from None

        return self.cache.get(key, compute), versions

    def _default_inventory(self) -> tuple[list[InventoryItem], int]:
        try:
            artifact = self.plane.registry.get(INVENTORY)
        except (NotFound, Unavailable):
            raise FailedPrecondition(
                "no inventory in the request and no default inventory snapshot is loaded"
            ) from None
        return list(artifact.payload), artifact.version

    def plan(self, request: PlanRequest, items: Sequence[InventoryItem] | None) -> PlannedCampaigns:
        """The plan for `items` (None: the default inventory snapshot)."""
        forecasts = self.forecasts()
        products = forecasts.products
        models = {DEMAND: forecasts.model.version, PRODUCTS: forecasts.products_version}
        if items is None:
            items, models[INVENTORY] = self._default_inventory()
        items = [
            i if i.category else dataclasses.replace(i, category=products.category_of(i.product_id))
            for i in items
        ]
        means = mean_daily(forecasts.table, request.horizon_days)
        daily = {
            i.product_id: float(means[row])
            for i in items
            if (row := products.index.get(i.product_id)) is not None
        }
        positions = diagnose_all(items, daily, self.assumptions)
        segments, versions = self._segments()
        models.update(versions)
        currency = self._currency()
        return PlannedCampaigns(
            plan(positions, segments, request, self.assumptions, currency), currency, models
        )

    def _currency(self) -> str:
        """The data's currency, as training recorded it (demand model, then any served artifact)."""
        registry = self.plane.registry
        for artifact in (registry.get(DEMAND), *registry.serving().values()):
            currency = (artifact.manifest.get("serving") or {}).get("currency")
            if currency:
                return str(currency)
        return ""

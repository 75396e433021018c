"""Health per service: SERVING only while the models that service needs are loaded."""

from __future__ import annotations

from collections.abc import Mapping

from grpc_health.v1 import health, health_pb2

from server.registry import ModelRegistry

# What each service needs loaded to answer. Services needing nothing serve from start-up.
SERVICE_MODELS: Mapping[str, tuple[str, ...]] = {
    "crm.v1.SegmentationService": ("segmentation",),
    "crm.v1.ChurnService": ("churn",),
    "crm.v1.SpendService": ("spend",),
    "crm.v1.CampaignService": ("demand", "products"),
    "crm.v1.IntegrityService": (),
    "crm.v1.ModelService": (),
}

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class ServiceHealth:
    def __init__(self, registry: ModelRegistry) -> None:
        self.servicer = health.HealthServicer(experimental_non_blocking=True)
        self._registry = registry
        self._shutting_down = False
        registry.add_listener(self.refresh)

    def refresh(self) -> None:
        if self._shutting_down:
            return
        self.servicer.set("", SERVING)
        for service, models in SERVICE_MODELS.items():
            ready = all(self._registry.is_serving(m) for m in models)
            self.servicer.set(service, SERVING if ready else NOT_SERVING)

    def shutdown(self) -> None:
        """Every service NOT_SERVING, so balancers drain us before calls are refused."""
        self._shutting_down = True
        self.servicer.enter_graceful_shutdown()

"""Health per service: SERVING only while the models that service needs are loaded."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator, Mapping
from typing import Any

import grpc
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


class _HealthServicer(health.HealthServicer):
    """grpc's health servicer, plus a way to end every Watch stream at shutdown.

    A Watch never ends on its own, so an open watcher (a balancer, a sidecar) would hold the
    drain for the whole grace period. The sync server takes the blocking form of Watch: each
    stream is a watcher object whose `close()` ends it once its last status is sent.
    """

    def __init__(self) -> None:
        super().__init__(experimental_non_blocking=True)
        self._watchers: weakref.WeakSet[Any] = weakref.WeakSet()
        self._watchers_lock = threading.Lock()
        self._closed = False

    def Watch(  # noqa: N802 (the gRPC method name)
        self,
        request: health_pb2.HealthCheckRequest,
        context: grpc.ServicerContext,
        send_response_callback: Any = None,
    ) -> Iterator[health_pb2.HealthCheckResponse] | None:
        watcher = super().Watch(request, context, send_response_callback)
        if watcher is not None:
            with self._watchers_lock:
                self._watchers.add(watcher)
                if self._closed:  # arrived during shutdown: send its status and end it too
                    watcher.close()
        return watcher

    def close_watchers(self) -> None:
        """End every Watch stream after the status it has queued (NOT_SERVING by now)."""
        with self._watchers_lock:
            self._closed = True
            watchers = list(self._watchers)
        for watcher in watchers:
            watcher.close()


class ServiceHealth:
    def __init__(self, registry: ModelRegistry) -> None:
        self.servicer = _HealthServicer()
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
        """Every service NOT_SERVING, so balancers drain us before calls are refused; then
        every Watch stream ends, so watchers do not hold the drain."""
        self._shutting_down = True
        self.servicer.enter_graceful_shutdown()
        self.servicer.close_watchers()

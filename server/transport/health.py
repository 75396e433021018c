"""Health per service: SERVING only while the models that service needs are loaded."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2

from server.errors import ResourceExhausted
from server.models.registry import ModelRegistry

# What each service needs loaded to answer. Services needing nothing serve from start-up.
SERVICE_MODELS: Mapping[str, tuple[str, ...]] = {
    "crm.v1.SegmentationService": ("segmentation",),
    "crm.v1.ChurnService": ("churn",),
    "crm.v1.SpendService": ("spend", "revenue"),  # PredictSpend and PredictInvoiceRevenue
    "crm.v1.CampaignService": ("demand", "products"),
    "crm.v1.IntegrityService": (),
    "crm.v1.TransactionService": ("features",),
    "crm.v1.ModelService": (),
}

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


class _HealthServicer(health.HealthServicer):
    """grpc's health servicer, plus `List`, a bound on open Watch streams, and a way to end
    every Watch stream at shutdown.

    Watch runs in grpc's callback form (`experimental_non_blocking`, which the interceptor
    keeps): it registers a callback and returns, so an open watcher (a balancer, a sidecar, a
    client's health checking) holds no handler thread and no stream slot. Called the blocking
    way instead, it returns grpc's watcher object, which does hold a thread. Either way a Watch
    never ends on its own, so an open one would hold the drain for the whole grace period:
    shutdown ends each after the status it has queued (NOT_SERVING by then). Holding no thread,
    watchers are bounded on their own: at most `max_watches` open at once, more are refused with
    RESOURCE_EXHAUSTED (QuotaFailure subject `health_watches`) before anything is registered.
    """

    def __init__(self, max_watches: int) -> None:
        super().__init__(experimental_non_blocking=True)
        self._ends: set[Callable[[], None]] = set()
        self._ends_lock = threading.Lock()
        self._closed = False
        self._max_watches = max_watches
        self._watching = 0  # open Watch calls, counted from admission until the call ends
        self._sends = threading.Lock()  # orders sends to watchers; never held by grpc's poller

    def List(  # noqa: N802 (the gRPC method name)
        self, request: health_pb2.HealthListRequest, context: grpc.ServicerContext
    ) -> health_pb2.HealthListResponse:
        """Every service's status, as Check answers it for each (grpc's servicer has no List)."""
        statuses = self.statuses()
        return health_pb2.HealthListResponse(
            statuses={
                service: health_pb2.HealthCheckResponse(status=status)
                for service, status in statuses.items()
            }
        )

    def statuses(self) -> dict[str, int]:
        with self._lock:
            return dict(self._server_status)

    def Watch(  # noqa: N802 (the gRPC method name)
        self,
        request: health_pb2.HealthCheckRequest,
        context: grpc.ServicerContext,
        send_response_callback: Callable[[Any], None] | None = None,
    ) -> Iterator[health_pb2.HealthCheckResponse] | None:
        release = self._admit()
        try:
            if send_response_callback is None:
                watcher = super().Watch(request, context, None)  # queues; never blocks on send
            else:
                watcher = self._watch_by_callback(request.service, context, send_response_callback)
        except BaseException:
            release()
            raise
        if watcher is not None:
            end = watcher.close
        else:
            assert send_response_callback is not None
            callback = send_response_callback

            def end() -> None:
                callback(None)  # None ends the stream (the interceptor forwards it once)

        def ended() -> None:
            self._forget(end)
            release()

        with self._ends_lock:
            closed = self._closed
            if not closed:
                self._ends.add(end)
        if closed:  # arrived during shutdown: send its status and end it too
            end()
        if not context.add_callback(ended):
            ended()  # the call had already ended
        return watcher

    # grpc's servicer sends to watchers while holding its lock, and a send waits for grpc's
    # poller thread to complete it; the poller runs each ended Watch's close callback, which
    # takes that lock. One cancelled watcher while another was being sent to wedged the whole
    # server (every call, Check included, timed out). Here no send happens under `_lock`:
    # `_sends` orders the sends of Watch and `set` (so a watcher never sees a newer status
    # overtaken by an older one), and the close callbacks only ever take `_lock`.
    def _watch_by_callback(
        self, service: str, context: grpc.ServicerContext, send: Callable[[Any], None]
    ) -> None:
        with self._sends:
            with self._lock:
                status = self._server_status.get(service, SERVICE_UNKNOWN)
                self._send_response_callbacks.setdefault(service, set()).add(send)
            context.add_callback(self._on_close_callback(send, service))
            send(health_pb2.HealthCheckResponse(status=status))

    def set(self, service: str, status: int) -> None:
        with self._sends:
            with self._lock:
                if self._gracefully_shutting_down:
                    return
                self._server_status[service] = status
                sends = list(self._send_response_callbacks.get(service, ()))
            for send in sends:
                send(health_pb2.HealthCheckResponse(status=status))

    def enter_graceful_shutdown(self) -> None:
        with self._lock:
            if self._gracefully_shutting_down:
                return
            services = list(self._server_status)
        for service in services:
            self.set(service, NOT_SERVING)
        with self._lock:
            self._gracefully_shutting_down = True

    def _admit(self) -> Callable[[], None]:
        """Count one more open Watch, or refuse it; returns the (idempotent) release."""
        with self._ends_lock:
            if self._watching >= self._max_watches:
                raise ResourceExhausted(
                    f"at most {self._max_watches} health Watch streams may be open at once"
                    " (--max-health-watches); retry later or use Check",
                    subject="health_watches",
                    description=f"open health Watch streams per process <= {self._max_watches}",
                )
            self._watching += 1
        released = False

        def release() -> None:
            nonlocal released
            with self._ends_lock:
                if not released:
                    released = True
                    self._watching -= 1

        return release

    def _forget(self, end: Callable[[], None]) -> None:
        with self._ends_lock:
            self._ends.discard(end)

    def close_watchers(self) -> None:
        """End every Watch stream after the status it has queued (NOT_SERVING by now)."""
        with self._ends_lock:
            self._closed = True
            ends = list(self._ends)
            self._ends.clear()
        for end in ends:
            end()


class ServiceHealth:
    def __init__(self, registry: ModelRegistry | None, max_watches: int) -> None:
        """`registry` None: the server has tenants, each with its own models, and health
        (open to every caller, with no tenant) says only whether the process serves."""
        self.servicer = _HealthServicer(max_watches)
        self._registry = registry
        self._shutting_down = False
        if registry is not None:
            registry.add_listener(self.refresh)

    def refresh(self) -> None:
        if self._shutting_down:
            return
        self.servicer.set("", SERVING)
        for service, models in SERVICE_MODELS.items():
            registry = self._registry
            ready = registry is None or all(registry.is_serving(m) for m in models)
            self.servicer.set(service, SERVING if ready else NOT_SERVING)

    def ready(self) -> bool:
        """The server's overall status and every crm.v1 service's are SERVING: the Open
        Inference Protocol's ServerReady answers this, so the two protocols agree."""
        statuses = self.servicer.statuses()
        return all(statuses.get(s) == SERVING for s in ("", *SERVICE_MODELS))

    def shutdown(self) -> None:
        """Every service NOT_SERVING, so balancers drain us before calls are refused; then
        every Watch stream ends, so watchers do not hold the drain."""
        self._shutting_down = True
        self.servicer.enter_graceful_shutdown()
        self.servicer.close_watchers()

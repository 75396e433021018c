"""Builds the gRPC server: registry, servicers, health, reflection, interceptors, /metrics.

grpc's threaded server, not grpc.aio: measured here, pre-forked threaded servers scale with
processes where aio ones did not (benchmarks/grpc_ceiling.py), and blocking handlers leave room
for a batching executor that parks callers on futures.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health_pb2_grpc

from crm.v1 import (
    campaign_pb2_grpc,
    churn_pb2_grpc,
    integrity_pb2_grpc,
    model_pb2_grpc,
    segmentation_pb2_grpc,
    spend_pb2_grpc,
    transactions_pb2_grpc,
)
from inference import open_inference_grpc_pb2_grpc
from server.config import ServerConfig
from server.metrics import MetricsEndpoint, ServerMetrics
from server.security.policy import SecurityPolicy
from server.security.tls import TlsError, server_credentials
from server.transport.drain import CLOSE_TIMEOUT_S, EXIT_ABANDONED, EXIT_DRAINED, CallGate
from server.transport.handler_pool import HandlerPool
from server.transport.health import SERVICE_MODELS, ServiceHealth
from server.transport.interceptor import serving_interceptor
from server.transport.reflection import enable_reflection
from server.transport.stack import OIP_SERVICE, ServiceStack
from server.transport.stream_slots import StreamSlots
from server.transport.tenants import RoutedServicer, Tenants

log = logging.getLogger("server")


class PortInUse(RuntimeError):
    """The gRPC port could not be bound (another process holds it)."""


class BadCertificate(PortInUse):
    """TLS is configured but its files cannot be used: the port cannot be served either."""


@dataclass(frozen=True)
class BoundPorts:
    grpc: int
    metrics: int  # -1 when disabled


# Each crm.v1 service and the generated function that registers its servicer.
_REGISTER: dict[str, Callable[[Any, grpc.Server], None]] = {
    "crm.v1.ModelService": model_pb2_grpc.add_ModelServiceServicer_to_server,
    "crm.v1.SegmentationService": segmentation_pb2_grpc.add_SegmentationServiceServicer_to_server,
    "crm.v1.ChurnService": churn_pb2_grpc.add_ChurnServiceServicer_to_server,
    "crm.v1.SpendService": spend_pb2_grpc.add_SpendServiceServicer_to_server,
    "crm.v1.IntegrityService": integrity_pb2_grpc.add_IntegrityServiceServicer_to_server,
    "crm.v1.CampaignService": campaign_pb2_grpc.add_CampaignServiceServicer_to_server,
    "crm.v1.TransactionService": transactions_pb2_grpc.add_TransactionServiceServicer_to_server,
    OIP_SERVICE: open_inference_grpc_pb2_grpc.add_GRPCInferenceServiceServicer_to_server,
}


def _host_note(config: ServerConfig) -> dict[str, str]:
    """Say so when the server chose loopback for lack of security, not because it was asked."""
    if config.host or config.bind_host != "127.0.0.1":
        return {}
    return {
        "host_note": "loopback only: neither TLS nor authentication is configured "
        "(--host 0.0.0.0 listens on every interface)"
    }


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def _add_port(server: grpc.Server, address: str, config: ServerConfig) -> int:
    """Bind with TLS (server.security.tls: certificates re-read on rotation) when configured,
    else plaintext. 0 or RuntimeError when the port cannot be bound; TlsError on bad files."""
    credentials = server_credentials(config)
    if credentials is None:
        return server.add_insecure_port(address)
    return server.add_secure_port(address, credentials)


def _connection_age_options(config: ServerConfig) -> list[tuple[str, int]]:
    """GOAWAY after --max-connection-age-seconds (calls in flight get --grace-seconds more), so
    a client's long-lived connection moves to replicas added by a scale-up; 0 = never."""
    if config.max_connection_age_seconds <= 0:
        return []
    return [
        ("grpc.max_connection_age_ms", int(config.max_connection_age_seconds * 1000)),
        ("grpc.max_connection_age_grace_ms", int(config.grace_seconds * 1000)),
    ]


class CrmServer:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.metrics = ServerMetrics()
        self._handler_pool = HandlerPool(config.threads)
        self._stream_pool = ThreadPoolExecutor(
            max(4, config.threads // 4), thread_name_prefix="stream"
        )
        self.gate = CallGate()
        streams = StreamSlots(config.stream_limit, config.threads, self.metrics.open_streams)
        self.security = SecurityPolicy.from_config(config)
        self.server = grpc.server(
            self._handler_pool,
            interceptors=[
                serving_interceptor(
                    self.metrics, streams, self.gate, self.security, config.metrics_tenant_label
                )
            ],
            options=[
                # A leftover server must not silently share the port: SO_REUSEPORT only for
                # workers of one supervisor, which checked the port was free first.
                ("grpc.so_reuseport", 1 if config.worker_id else 0),
                ("grpc.max_receive_message_length", config.max_message_bytes),
                ("grpc.max_send_message_length", config.max_message_bytes),
                *_connection_age_options(config),
            ],
            maximum_concurrent_rpcs=config.max_concurrent_rpcs,
        )
        # One stack over --artifacts and --data-dir, or one per tenant (server.transport.tenants).
        self.stack: ServiceStack | None = None
        self.tenants: Tenants | None = None
        if config.tenants:
            self.tenants = Tenants(config, self.metrics, self._stream_pool, self._ready)
            servicers = {s: RoutedServicer(self.tenants, s) for s in _REGISTER}
            self.health = ServiceHealth(None, config.max_health_watches)
        else:
            self.stack = ServiceStack.build(
                config, self.metrics, self._stream_pool, ready=self._ready
            )
            servicers = self.stack.servicers
            self.health = ServiceHealth(self.stack.registry, config.max_health_watches)
        for service, add in _REGISTER.items():
            add(servicers[service], self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health.servicer, self.server)
        enable_reflection(self.server, [*SERVICE_MODELS, OIP_SERVICE, "grpc.health.v1.Health"])
        self._metrics_endpoint: MetricsEndpoint | None = None
        self.ports: BoundPorts | None = None

    def _ready(self) -> bool:
        """OIP ServerReady: what health says (set after the stacks, read per call)."""
        return self.health.ready()

    def add_reload_listener(self, callback: Callable[[], None]) -> None:
        """Called after every reload that changed what a stack serves (any tenant's)."""
        if self.stack is not None:
            self.stack.add_reload_listener(callback)
        if self.tenants is not None:
            self.tenants.add_reload_listener(callback)

    def start(self) -> BoundPorts:
        if self.stack is not None:
            self.stack.registry.reload()
        self.health.refresh()
        address = _address(self.config.bind_host, self.config.port)
        try:
            port = _add_port(self.server, address, self.config)
        except TlsError as err:
            raise BadCertificate(f"cannot serve TLS on {address}: {err}") from None
        except RuntimeError as err:
            raise PortInUse(f"cannot bind gRPC to {address}: {err}") from None
        if port == 0:
            raise PortInUse(f"cannot bind gRPC to {address}")
        self.server.start()
        health_port = self._serve_health_port()
        metrics_port = -1
        if self.config.metrics_port >= 0:
            try:
                self._metrics_endpoint = MetricsEndpoint.for_config(
                    self.metrics.registry, self.config
                )
            except TlsError as err:
                raise BadCertificate(f"cannot serve /metrics over TLS: {err}") from None
            metrics_port = self._metrics_endpoint.port
        if self.stack is not None:
            self.stack.watch(self.config.reload_interval_seconds)
        self.ports = BoundPorts(port, metrics_port)
        log.info(
            "worker listening" if self.config.worker_id else "listening",
            extra={
                "worker": self.config.worker_id,
                "host": self.config.bind_host,
                **_host_note(self.config),
                "tls": self.config.tls_mode,
                "authentication": "on" if self.config.auth_configured else "off",
                "tenants": self.config.tenants,
                "grpc_port" if not self.config.worker_id else "port": port,
                "metrics_port": metrics_port,
                "health_port": health_port,
                "metrics_host": self.config.metrics_bind_host,
                "metrics_tls": self.config.metrics_tls,
                "artifacts": str(self.config.artifacts),
                "models": {n: a.version for n, a in self.stack.registry.serving().items()}
                if self.stack is not None
                else "per tenant",
            },
        )
        return self.ports

    def stop(self, grace_seconds: float | None = None) -> int:
        """Drain, then close what the calls used; returns the process exit code. Health goes
        NOT_SERVING (watch streams end), calls still queued in gRPC core are served, later ones
        get UNAVAILABLE, and in-flight calls get the grace period (`server.transport.drain`). Calls still
        running then are logged and abandoned (EXIT_ABANDONED). gRPC's core is left running on
        purpose (its shutdown cancels queued calls): the caller exits the process, with
        os._exit, since abandoned handler threads would block a normal exit forever."""
        grace = self.config.grace_seconds if grace_seconds is None else grace_seconds
        deadline = time.monotonic() + grace
        self.health.shutdown()
        for stack in self._stacks():
            stack.close_endless()
        if self.tenants is not None:
            self.tenants.close_endless()
        self.gate.drain(grace)
        abandoned = self.gate.wait_idle(deadline)
        if abandoned:
            log.error(
                "grace period over: abandoning calls still in flight",
                extra={
                    "in_flight": sum(abandoned.values()),
                    "methods": abandoned,
                    "grace_seconds": grace,
                },
            )
        # The stores commit every acknowledged write durably (SQLite WAL, synchronous=FULL), so
        # a close that cannot finish (an abandoned append holds a store's lock) loses nothing
        # acknowledged; it just must not hold the exit.
        closer = threading.Thread(target=self._close, name="close-stores", daemon=True)
        closer.start()
        closer.join(CLOSE_TIMEOUT_S)
        if closer.is_alive():
            log.error("closing stores timed out", extra={"timeout_seconds": CLOSE_TIMEOUT_S})
        return EXIT_ABANDONED if abandoned else EXIT_DRAINED

    def _stacks(self) -> list[ServiceStack]:
        return [self.stack] if self.stack is not None else []

    def _serve_health_port(self) -> int:
        """grpc.health.v1 alone, in plaintext, on --health-port (-1 when off): kubelet's native
        gRPC probes cannot speak TLS. It answers what the main port's health service answers
        (the same servicer, NOT_SERVING from the start of a drain) and nothing else."""
        if self.config.health_port < 0:
            return -1
        self._health_server = grpc.server(
            ThreadPoolExecutor(2, thread_name_prefix="health"),
            options=[("grpc.so_reuseport", 1 if self.config.worker_id else 0)],
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health.servicer, self._health_server)
        address = _address(self.config.bind_host, self.config.health_port)
        try:
            port = self._health_server.add_insecure_port(address)
        except RuntimeError as err:
            raise PortInUse(f"cannot bind the health port to {address}: {err}") from None
        self._health_server.start()
        return port

    def _close(self) -> None:
        for stack in self._stacks():
            stack.close()
        if self.tenants is not None:
            self.tenants.close()
        self.security.audit.close()
        if self._metrics_endpoint is not None:
            self._metrics_endpoint.close()

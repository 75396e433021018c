"""Prometheus metrics: the conventional gRPC server set plus per-model inference metrics.

Metric objects live on one CollectorRegistry per server, so several servers can share a process
(tests) and multi-process workers can later aggregate through the same definitions.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    make_wsgi_app,
    start_http_server,
)

if TYPE_CHECKING:
    from server.config import ServerConfig

log = logging.getLogger("server.metrics")

LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
)  # fmt: skip
GRPC_LABELS = ("grpc_type", "grpc_service", "grpc_method")


@dataclass
class MethodMetrics:
    """Pre-resolved label children for one method: no label lookups on the hot path."""

    started: Counter
    received: Counter
    sent: Counter
    seconds: Histogram
    _handled: Counter
    _labels: tuple[str, str, str]

    def __post_init__(self) -> None:
        self._by_code: dict[str, Counter] = {}

    def handled(self, code: str) -> Counter:
        child = self._by_code.get(code)
        if child is None:
            child = self._by_code[code] = self._handled.labels(*self._labels, code)
        return child


class ServerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.grpc_started = Counter(
            "grpc_server_started", "RPCs started on the server.", GRPC_LABELS, registry=r
        )
        self.grpc_handled = Counter(
            "grpc_server_handled",
            "RPCs completed on the server, regardless of success or failure.",
            (*GRPC_LABELS, "grpc_code"),
            registry=r,
        )
        self.grpc_received = Counter(
            "grpc_server_msg_received", "Stream messages received on the server.", GRPC_LABELS,
            registry=r,
        )  # fmt: skip
        self.grpc_sent = Counter(
            "grpc_server_msg_sent", "Stream messages sent by the server.", GRPC_LABELS, registry=r
        )
        self.tenant_calls = Counter(
            "crm_tenant_calls",
            "RPCs completed per tenant (only with --metrics-tenant-label).",
            ("tenant", "grpc_service", "grpc_method", "grpc_code"),
            registry=r,
        )
        self.grpc_seconds = Histogram(
            "grpc_server_handling_seconds",
            "Response latency of RPCs handled by the server.",
            GRPC_LABELS,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.inference_seconds = Histogram(
            "crm_model_inference_seconds",
            "Time in onnxruntime per call.",
            ("model", "version"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.rows_scored = Counter(
            "crm_model_rows_scored", "Rows scored by onnxruntime.", ("model", "version"), registry=r
        )
        self.precomputed_rows = Counter(
            "crm_model_rows_precomputed",
            "Rows answered from outputs precomputed over the feature snapshot (by customer_id).",
            ("model", "version"),
            registry=r,
        )
        self.batch_rows = Histogram(
            "crm_batch_rows",
            "Rows per onnxruntime call after dynamic batching.",
            ("model", "version"),
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384, 65536),
            registry=r,
        )
        self.queue_wait = Histogram(
            "crm_batch_queue_wait_seconds",
            "Time a request waited in the executor queue before its batch ran.",
            ("model", "version"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.model_info = Gauge(
            "crm_model_info",
            "1 for each artifact version loaded; serving=1 for the version answering by default.",
            ("model", "version", "kind", "serving"),
            registry=r,
            multiprocess_mode="max",
        )
        self.open_streams = Gauge(
            "crm_open_streams",
            "Streaming calls open now; each holds a handler thread (bound: --max-open-streams).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.reloads = Counter(
            "crm_model_reloads",
            "Artifact version load attempts by outcome (loaded, refused).",
            ("model", "outcome"),
            registry=r,
        )
        self.alerts_relayed = Counter(
            "crm_alerts_relayed",
            "Churn alerts sent to or received from other replicas over PostgreSQL NOTIFY.",
            ("direction",),
            registry=r,
        )
        self.alerts_relay_dropped = Counter(
            "crm_alerts_relay_dropped",
            "Churn alerts not sent to other replicas: queue_full (oldest dropped), too_large"
            " (over a NOTIFY payload), database (unreachable when sending).",
            ("reason",),
            registry=r,
        )
        self._lock = threading.Lock()
        self._methods: dict[tuple[str, str, str], MethodMetrics] = {}

    def for_method(self, grpc_type: str, service: str, method: str) -> MethodMetrics:
        key = (grpc_type, service, method)
        with self._lock:
            found = self._methods.get(key)
            if found is None:
                found = self._methods[key] = MethodMetrics(
                    self.grpc_started.labels(*key),
                    self.grpc_received.labels(*key),
                    self.grpc_sent.labels(*key),
                    self.grpc_seconds.labels(*key),
                    self.grpc_handled,
                    key,
                )
            return found


class MetricsEndpoint:
    """The /metrics HTTP server; port 0 binds a free port. With `tls` (a callable giving the
    SSLContext current now) it serves HTTPS: each accepted connection is wrapped with the
    context of that moment, so a rotated certificate applies to new connections."""

    def __init__(
        self,
        registry: CollectorRegistry,
        host: str,
        port: int,
        tls: Callable[[], ssl.SSLContext] | None = None,
    ) -> None:
        self._server: WSGIServer
        if tls is None:
            self._server, _ = start_http_server(port, addr=host, registry=registry)
        else:
            self._server = _HttpsServer((host, port), tls)
            self._server.set_app(make_wsgi_app(registry))
            threading.Thread(
                target=self._server.serve_forever, name="metrics-https", daemon=True
            ).start()
        self.port: int = self._server.server_port
        self.scheme = "http" if tls is None else "https"

    @classmethod
    def for_config(cls, registry: CollectorRegistry, config: ServerConfig) -> MetricsEndpoint:
        """On --metrics-host (or --host), --metrics-port, HTTPS with --metrics-tls."""
        tls = None
        if config.metrics_tls:
            from server.security.tls import ReloadingSSLContext

            tls = ReloadingSSLContext(config).current
        return cls(registry, config.metrics_bind_host, config.metrics_port, tls)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _QuietHandler(WSGIRequestHandler):
    timeout = 30  # a client that never finishes its handshake or request frees its thread

    def log_message(self, format: str, *args: Any) -> None:
        """No access log line per scrape."""


class _HttpsServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], tls: Callable[[], ssl.SSLContext]) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._tls = tls
        super().__init__(address, _QuietHandler)

    def get_request(self) -> tuple[socket.socket, Any]:
        """Wrap without handshaking: the handshake runs in the connection's own thread (on its
        first read), so a slow or failing client never holds the accept loop."""
        sock, address = super().get_request()
        wrapped = self._tls().wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return wrapped, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A failed handshake (plain HTTP, an untrusting client) is the client's problem."""
        log.debug("metrics connection failed", extra={"client": str(client_address)}, exc_info=True)

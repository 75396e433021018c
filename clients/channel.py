"""The channel a CrmClient opens: retries by gRPC itself (service config), message limits,
TLS (a CA to trust, a client certificate for mTLS) and a bearer token on every call.

UNAVAILABLE is retried with backoff for idempotent methods only, so an append or a save is
never sent twice. A target naming several replicas (clients.targets) balances calls round robin.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc

from clients.targets import balanced_target

# Never retried automatically: calls that write.
NON_IDEMPOTENT = {
    ("crm.v1.IntegrityService", "AppendLeaves"),
    ("crm.v1.IntegrityService", "AppendTransactions"),
    ("crm.v1.CampaignService", "SaveCampaign"),
}
RETRIED_SERVICES = (
    "crm.v1.SegmentationService",
    "crm.v1.ChurnService",
    "crm.v1.SpendService",
    "crm.v1.IntegrityService",
    "crm.v1.CampaignService",
    "crm.v1.ModelService",
    "crm.v1.TransactionService",  # IngestTransactions is idempotent per (invoice, line)
    "grpc.health.v1.Health",
)


def service_config(max_attempts: int = 4, balanced: bool = False) -> str:
    """gRPC service config: retry UNAVAILABLE with backoff, except for writes; with `balanced`,
    round robin over the target's addresses (a retry goes to the next replica)."""
    retry = {
        "maxAttempts": max_attempts,
        "initialBackoff": "0.1s",
        "maxBackoff": "2s",
        "backoffMultiplier": 2,
        "retryableStatusCodes": ["UNAVAILABLE"],
    }
    config: dict[str, object] = {
        "methodConfig": [
            {"name": [{"service": s, "method": m} for s, m in sorted(NON_IDEMPOTENT)]},
            {"name": [{"service": s} for s in RETRIED_SERVICES], "retryPolicy": retry},
        ]
    }
    if balanced:
        config["loadBalancingConfig"] = [{"round_robin": {}}]
    return json.dumps(config)


def open_channel(
    target: str,
    max_message_mb: int = 64,
    *,
    ca: Path | None = None,
    cert: Path | None = None,
    key: Path | None = None,
    token: str | None = None,
    server_name: str | None = None,
) -> grpc.Channel:
    """A channel to `target` with the retry policy and `max_message_mb` each way; `target` may
    name several replicas ('h1:p,h2:p' or 'dns:///name:port'), balanced call by call.

    With `ca` and/or `cert`+`key`: TLS, trusting `ca` (else the system's roots) and presenting
    the client certificate (mTLS). Without them: plaintext. `token` goes out as
    `authorization: Bearer <token>` on every call, over TLS or not (send it in clear only on
    loopback). `server_name` overrides the name the server certificate must carry.
    """
    if (cert is None) != (key is None):
        raise ValueError("a client certificate needs its key: give cert and key together")
    target, balanced = balanced_target(target)
    options: list[tuple[str, Any]] = [
        ("grpc.service_config", service_config(balanced=balanced)),
        ("grpc.enable_retries", 1),
        ("grpc.max_receive_message_length", max_message_mb * 1024 * 1024),
        ("grpc.max_send_message_length", max_message_mb * 1024 * 1024),
    ]
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    if ca is None and cert is None:
        channel = grpc.insecure_channel(target, options=options)
    else:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=ca.read_bytes() if ca is not None else None,
            private_key=key.read_bytes() if key is not None else None,
            certificate_chain=cert.read_bytes() if cert is not None else None,
        )
        channel = grpc.secure_channel(target, credentials, options=options)
    if token:
        channel = grpc.intercept_channel(channel, BearerToken(token))
    return channel


class _CallDetails(
    collections.namedtuple(
        "_CallDetails",
        ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression"),
    ),
    grpc.ClientCallDetails,
):
    """grpc.ClientCallDetails with replaced metadata (gRPC gives no constructor of its own)."""


class BearerToken(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds `authorization: Bearer <token>` to every call's metadata. An interceptor, not call
    credentials: gRPC sends call credentials over secure channels only, and a developer's
    plaintext loopback server with tokens on must work too."""

    def __init__(self, token: str) -> None:
        if not token.strip() or any(c in token for c in "\r\n"):
            raise ValueError("the token must be one non-empty line")
        self._header = ("authorization", f"Bearer {token.strip()}")

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = [m for m in (details.metadata or ()) if m[0] != "authorization"]
        return _CallDetails(
            details.method,
            details.timeout,
            [*metadata, self._header],
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Callable, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Callable, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(
        self, continuation: Callable, details: Any, requests: Iterator[Any]
    ) -> Any:
        return continuation(self._details(details), requests)

    def intercept_stream_stream(
        self, continuation: Callable, details: Any, requests: Iterator[Any]
    ) -> Any:
        return continuation(self._details(details), requests)

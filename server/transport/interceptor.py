"""The server's interceptor: the stages of `server.transport.interceptors`, in order, in one grpc
interceptor (`serving_interceptor`), for the server and for in-process test servers alike.
"""

from __future__ import annotations

from server.metrics import ServerMetrics
from server.security.policy import SecurityPolicy
from server.transport.drain import CallGate
from server.transport.interceptors.audit import Audit
from server.transport.interceptors.auth import Authentication
from server.transport.interceptors.chain import Stage, StagedInterceptor
from server.transport.interceptors.decoding import Decoding
from server.transport.interceptors.drain import DRAINING_MESSAGE, DrainGate
from server.transport.interceptors.errors import ErrorStatus
from server.transport.interceptors.metrics import GrpcMetrics
from server.transport.interceptors.stream_limits import StreamLimit
from server.transport.interceptors.tenant_metrics import TenantCalls
from server.transport.stream_slots import StreamSlots

__all__ = ["DRAINING_MESSAGE", "serving_interceptor", "serving_stages"]


def serving_stages(
    metrics: ServerMetrics,
    streams: StreamSlots,
    gate: CallGate,
    security: SecurityPolicy,
    tenant_label: bool = False,
) -> list[Stage]:
    """Every call's stages, outermost first: errors first so it sees what any other raised;
    metrics next, so refusals by any later stage are counted with their code. The drain gate
    before authentication: a draining server refuses at once, without checking a token.
    Authentication before the audit (which then knows the principal), the stream slots
    (an unauthenticated caller holds no slot) and decoding (a refused body is never parsed).
    Calls per tenant, when asked for, inside authentication (which names the tenant)."""
    return [
        ErrorStatus(),
        GrpcMetrics(metrics),
        DrainGate(gate),
        Authentication(security),
        *([TenantCalls(metrics.tenant_calls)] if tenant_label else []),
        Audit(security.audit),
        StreamLimit(streams),
        Decoding(),
    ]


def serving_interceptor(
    metrics: ServerMetrics,
    streams: StreamSlots,
    gate: CallGate | None = None,
    security: SecurityPolicy | None = None,
    tenant_label: bool = False,
) -> StagedInterceptor:
    """The one grpc interceptor every call passes (a fresh drain gate unless given; with
    authentication off unless a security policy is given)."""
    stages = serving_stages(
        metrics, streams, gate or CallGate(), security or SecurityPolicy(), tenant_label
    )
    return StagedInterceptor(*stages)

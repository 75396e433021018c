"""The server's interceptor: the stages of `server.interceptors`, in order, in one grpc
interceptor. `serving_stages` is the list app.py registers (plus the in-flight count);
`ObservabilityInterceptor` is the same with the count, for in-process test servers.
"""

from __future__ import annotations

from collections.abc import Collection

from server.drain import CallGate
from server.inflight import InFlight
from server.interceptors.chain import Stage, StagedInterceptor
from server.interceptors.decoding import Decoding
from server.interceptors.drain import DRAINING_MESSAGE, DrainGate
from server.interceptors.errors import ErrorStatus
from server.interceptors.in_flight import ScoringInFlight
from server.interceptors.metrics import GrpcMetrics
from server.interceptors.stream_limits import StreamLimit
from server.metrics import ServerMetrics
from server.stream_slots import StreamSlots

__all__ = ["DRAINING_MESSAGE", "ObservabilityInterceptor", "serving_stages"]


def serving_stages(metrics: ServerMetrics, streams: StreamSlots, gate: CallGate) -> list[Stage]:
    """Every call's stages, outermost first: errors first so it sees what any other raised."""
    return [ErrorStatus(), GrpcMetrics(metrics), DrainGate(gate), StreamLimit(streams), Decoding()]


class ObservabilityInterceptor(StagedInterceptor):
    def __init__(
        self,
        metrics: ServerMetrics,
        in_flight: InFlight,
        streams: StreamSlots,
        batched_services: Collection[str] = (),
        gate: CallGate | None = None,
    ) -> None:
        """The server's stages with calls of `batched_services` counted in `in_flight`."""
        super().__init__(
            *serving_stages(metrics, streams, CallGate() if gate is None else gate),
            ScoringInFlight(in_flight, batched_services),
        )

"""gRPC metrics of every call: started, handled by status code, latency, messages each way.

The conventional grpc-prometheus set (`server.metrics`). A call is handled with the status that
`server.transport.interceptors.errors.outcome` gives what ended it, so the count matches what the client
got; a stream in grpc's callback form that ends after its client left is CANCELLED. Label
children are resolved once per method, so a call costs a few counter increments.
"""

from __future__ import annotations

import time

import grpc

from server.metrics import MethodMetrics, ServerMetrics
from server.transport.interceptors.chain import Hooks, Method
from server.transport.interceptors.errors import ended_with


class GrpcMetrics:
    def __init__(self, metrics: ServerMetrics) -> None:
        self._metrics = metrics

    def bind(self, method: Method) -> Hooks:
        m = self._metrics.for_method(method.kind, method.service, method.name)
        return _Metered(m, method)


class _Metered(Hooks):
    def __init__(self, m: MethodMetrics, method: Method) -> None:
        self._m = m
        self._unary_request = not method.request_streaming
        self._callback = method.callback
        self.received = m.received.inc if method.request_streaming else None
        self.sent = m.sent.inc

    def start(self, context: grpc.ServicerContext) -> float:
        self._m.started.inc()
        if self._unary_request:
            self._m.received.inc()  # counted on arrival, even if the call is refused
        return time.perf_counter()

    def end(self, t0: float, context: grpc.ServicerContext, error: BaseException | None) -> None:
        m = self._m
        m.seconds.observe(time.perf_counter() - t0)
        if error is None and self._callback and not context.is_active():
            m.handled("CANCELLED").inc()  # the callback form's client left: no error told us
        else:
            m.handled(ended_with(error, context).name).inc()

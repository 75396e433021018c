"""One server interceptor for what every call needs: gRPC metrics, error mapping, the count
of scoring calls in flight that the batching executor reads, the bound on open streams
(`server.stream_slots`) that keeps handler threads free for unary calls, and request decoding
(`server.decoding`: a body that does not parse is INVALID_ARGUMENT, not grpc's INTERNAL).

Handlers raise `server.errors.ServiceError` subclasses on purpose; those become their status
with google.rpc details. Any other exception is logged with its traceback and reaches the
client as INTERNAL with a generic message -- never UNKNOWN, never the exception text.
Wrapped handlers are cached per known method, so the per-call cost is the wrapper alone; an
unknown method costs nothing to remember (grpc answers it UNIMPLEMENTED).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator
from typing import Any

import grpc
from grpc_status import rpc_status

from server.decoding import Decoder, decoded_stream, decoder
from server.drain import CallGate
from server.errors import INTERNAL_MESSAGE, ServiceError
from server.inflight import InFlight
from server.metrics import MethodMetrics, ServerMetrics
from server.stream_slots import StreamSlots

log = logging.getLogger("server.rpc")
_OK = grpc.StatusCode.OK
DRAINING_MESSAGE = "the server is shutting down; retry the call"


def _code_name(context: grpc.ServicerContext) -> str:
    code = context.code()
    return "OK" if code is None else code.name


def _fail(
    exc: BaseException, context: grpc.ServicerContext, m: MethodMetrics, t0: float, method: str
) -> None:
    """Record the outcome of a raising handler and turn the exception into a status."""
    m.seconds.observe(time.perf_counter() - t0)
    if isinstance(exc, ServiceError):
        m.handled(exc.code.name).inc()
        if exc.code is grpc.StatusCode.INTERNAL:
            log.error("internal error", extra={"method": method}, exc_info=exc)
        context.abort_with_status(rpc_status.to_status(exc.to_status()))
    if isinstance(exc, GeneratorExit) or not context.is_active():
        m.handled("CANCELLED").inc()
        raise exc
    code = context.code()
    if code is not None and code is not _OK:
        # The handler set its own status (context.abort, or the generated UNIMPLEMENTED stub):
        # keep it, and abort so grpc does not log the exception as an application error.
        m.handled(code.name).inc()
        context.abort(code, context.details() or code.name)
    m.handled("INTERNAL").inc()
    log.error("unhandled exception", extra={"method": method}, exc_info=exc)
    context.abort(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)


def _admit(gate: CallGate, method: str, context: grpc.ServicerContext, m: MethodMetrics) -> None:
    """Count the call in flight until it has ended (status sent); during a drain, past its
    settling time, refuse it with UNAVAILABLE instead (`server.drain`)."""
    if not gate.enter(method):
        m.handled("UNAVAILABLE").inc()
        context.abort(grpc.StatusCode.UNAVAILABLE, DRAINING_MESSAGE)
    if not context.add_callback(lambda: gate.leave(method)):
        gate.leave(method)  # the call had already ended


def _count(bodies: Iterator[bytes], m: MethodMetrics, decode: Decoder) -> Iterator[Any]:
    for request in decoded_stream(bodies, decode):
        m.received.inc()
        yield request


class ObservabilityInterceptor(grpc.ServerInterceptor):
    def __init__(
        self,
        metrics: ServerMetrics,
        in_flight: InFlight,
        streams: StreamSlots,
        batched_services: Collection[str] = (),
        gate: CallGate | None = None,
    ) -> None:
        """Only unary calls of `batched_services` (whose calls may reach the batching executor)
        count in `in_flight`: a health check or a campaign plan in flight will never join a
        batch, so a batching leader must not wait for it. Every call counts in `gate`."""
        self._metrics = metrics
        self._in_flight = in_flight
        self._streams = streams
        self._gate = CallGate() if gate is None else gate
        self._batched = frozenset(batched_services)
        self._cache: dict[str, grpc.RpcMethodHandler | None] = {}

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        try:
            return self._cache[method]
        except KeyError:
            inner = continuation(handler_call_details)
            if inner is None:  # not cached: any client could fill memory with made-up names
                return None
            wrapped = self._cache[method] = self._wrap(method, inner)
            return wrapped

    def _wrap(self, method: str, h: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        service, _, name = method.lstrip("/").rpartition("/")
        # No deserializer for grpc: the wrappers decode (server.decoding), so a body that does
        # not parse is the client's INVALID_ARGUMENT instead of grpc's INTERNAL.
        des, ser = None, h.response_serializer
        decode = decoder(h.request_deserializer or _identity)
        streams, gate = self._streams, self._gate
        if h.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _unary_unary(
                    h.unary_unary, self._metrics.for_method("unary", service, name), method,
                    self._in_flight if service in self._batched else None, decode, gate=gate,
                ),
                des, ser,
            )  # fmt: skip
        if h.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _unary_stream(h.unary_stream, self._metrics.for_method("server_stream", service, name), method, streams, decode, gate=gate),
                des, ser,
            )  # fmt: skip
        if h.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                _stream_unary(h.stream_unary, self._metrics.for_method("client_stream", service, name), method, streams, decode, gate=gate),
                des, ser,
            )  # fmt: skip
        return grpc.stream_stream_rpc_method_handler(
            _stream_stream(h.stream_stream, self._metrics.for_method("bidi_stream", service, name), method, streams, decode, gate=gate),
            des, ser,
        )  # fmt: skip


def _identity(body: bytes) -> bytes:
    return body


def _unary_unary(
    fn: Callable,
    m: MethodMetrics,
    method: str,
    in_flight: InFlight | None,
    decode: Decoder,
    *,
    gate: CallGate,
) -> Callable:
    def handler(body: bytes, context: grpc.ServicerContext) -> Any:
        m.started.inc()
        m.received.inc()
        _admit(gate, method, context, m)
        t0 = time.perf_counter()
        if in_flight is not None:
            in_flight.enter()
        try:
            response = fn(decode(body, "request"), context)
        except BaseException as exc:
            _fail(exc, context, m, t0, method)
            raise
        finally:
            if in_flight is not None:
                in_flight.leave()
        m.seconds.observe(time.perf_counter() - t0)
        m.handled(_code_name(context)).inc()
        m.sent.inc()
        return response

    return handler


def _stream_unary(
    fn: Callable,
    m: MethodMetrics,
    method: str,
    streams: StreamSlots,
    decode: Decoder,
    *,
    gate: CallGate,
) -> Callable:
    def handler(bodies: Iterator[bytes], context: grpc.ServicerContext) -> Any:
        m.started.inc()
        _admit(gate, method, context, m)
        t0 = time.perf_counter()
        try:
            with streams.held():
                response = fn(_count(bodies, m, decode), context)
        except BaseException as exc:
            _fail(exc, context, m, t0, method)
            raise
        m.seconds.observe(time.perf_counter() - t0)
        m.handled(_code_name(context)).inc()
        m.sent.inc()
        return response

    return handler


def _stream_out(
    responses: Iterator[Any],
    context: grpc.ServicerContext,
    m: MethodMetrics,
    t0: float,
    *,
    method: str,
    streams: StreamSlots,
) -> Iterator[Any]:
    """The slot is taken on the first step, where grpc starts holding the thread for the
    stream, and given back however iterating ends (a dropped stream closes this generator)."""
    try:
        with streams.held():
            for response in responses:
                m.sent.inc()
                yield response
    except BaseException as exc:
        _fail(exc, context, m, t0, method)
        raise
    m.seconds.observe(time.perf_counter() - t0)
    m.handled(_code_name(context)).inc()


def _unary_stream(
    fn: Callable,
    m: MethodMetrics,
    method: str,
    streams: StreamSlots,
    decode: Decoder,
    *,
    gate: CallGate,
) -> Callable:
    if getattr(fn, "experimental_non_blocking", False):
        return _unary_stream_by_callback(fn, m, method, decode, gate=gate)

    def handler(body: bytes, context: grpc.ServicerContext) -> Iterator[Any]:
        m.started.inc()
        m.received.inc()
        _admit(gate, method, context, m)
        t0 = time.perf_counter()
        try:
            responses = fn(decode(body, "request"), context)
        except BaseException as exc:
            _fail(exc, context, m, t0, method)
            raise
        return _stream_out(responses, context, m, t0, method=method, streams=streams)

    return handler


def _unary_stream_by_callback(
    fn: Callable, m: MethodMetrics, method: str, decode: Decoder, gate: CallGate
) -> Callable:
    """grpc's callback form of a server stream (`experimental_non_blocking`, which the health
    service's Watch uses): the handler registers a callback and returns, so the stream holds
    no handler thread and takes no stream slot. A None ends the stream; grpc must get it once,
    so the first None is forwarded and anything after it dropped."""

    def handler(
        body: bytes, context: grpc.ServicerContext, send_response_callback: Callable[[Any], None]
    ) -> None:
        m.started.inc()
        m.received.inc()
        _admit(gate, method, context, m)
        t0 = time.perf_counter()
        lock = threading.Lock()
        ended = False

        def send(response: Any) -> None:
            nonlocal ended
            with lock:
                if ended:
                    return
                ended = response is None
            if response is None:
                m.seconds.observe(time.perf_counter() - t0)
                m.handled("OK" if context.is_active() else "CANCELLED").inc()
            else:
                m.sent.inc()
            send_response_callback(response)

        try:
            fn(decode(body, "request"), context, send)
        except BaseException as exc:
            _fail(exc, context, m, t0, method)
            raise

    handler.experimental_non_blocking = True  # type: ignore[attr-defined]
    return handler


def _stream_stream(
    fn: Callable,
    m: MethodMetrics,
    method: str,
    streams: StreamSlots,
    decode: Decoder,
    *,
    gate: CallGate,
) -> Callable:
    def handler(bodies: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[Any]:
        m.started.inc()
        _admit(gate, method, context, m)
        t0 = time.perf_counter()
        try:
            responses = fn(_count(bodies, m, decode), context)
        except BaseException as exc:
            _fail(exc, context, m, t0, method)
            raise
        return _stream_out(responses, context, m, t0, method=method, streams=streams)

    return handler

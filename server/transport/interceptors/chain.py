"""One grpc server interceptor that runs a list of stages, each one concern of every call.

Why one interceptor and not one per concern: grpc calls every interceptor's intercept_service
on every call, and each interceptor's wrapper is another Python call per RPC. Here there is one
lookup and one wrapper per call, and each concern (`server.transport.interceptors`) is still written once:
a stage says what it does at the points every call has -- its start, each message, its end --
and this module alone knows how the four call kinds (and grpc's callback form of a server
stream) reach those points.

A stage binds to each method once (`Stage.bind`), returning the hooks it needs for that method
or None; hooks a stage leaves out cost nothing per call. Starts run in stage order, ends in
reverse, so the first stage is the outermost. An end sees the exception that ended the call (or
None) and may raise another in its place, which outer ends then see: the error stage turns an
exception into a status that way, outermost. Wrapped handlers are cached per known method; an
unknown method is not remembered, or any client could fill memory with made-up names.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol

import grpc

_HANDLER_OF = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}
# grpc-prometheus's grpc_type of each (request_streaming, response_streaming).
_KINDS = {
    (False, False): "unary",
    (True, False): "client_stream",
    (False, True): "server_stream",
    (True, True): "bidi_stream",
}


@dataclass(frozen=True)
class Method:
    """What a stage may need to know about a method, once, when binding to it."""

    path: str  # "/crm.v1.ChurnService/PredictChurn"
    service: str  # "crm.v1.ChurnService"
    name: str  # "PredictChurn"
    kind: str  # unary, client_stream, server_stream or bidi_stream
    request_streaming: bool
    response_streaming: bool
    callback: bool  # grpc's callback form of a server stream: holds no handler thread
    handler: grpc.RpcMethodHandler  # the handler as registered (its deserializer, ...)


class Hooks:
    """What a stage does on the calls of one method. A subclass defines only the hooks it
    needs; the others stay None and are never called.

    start(context) -> token: before the handler; may raise (the call ends there).
    end(token, context, error): when the call has ended, `error` None or what ended it.
    decode(body, field="request") -> message: every request body (at most one stage decodes).
    seen(token, request): the decoded request of a call with one request message (unary and
        server stream), once, before the handler; a client stream's messages are not seen.
    received(): every request message of a client stream, once decoded.
    sent(): every response message, the one of a unary call included.
    responses(iterator) -> iterator: wraps a server stream's responses (not the callback form).
    """

    start: Callable[[grpc.ServicerContext], Any] | None = None
    end: Callable[[Any, grpc.ServicerContext, BaseException | None], None] | None = None
    decode: Callable[[bytes, str], Any] | None = None
    seen: Callable[[Any, Any], None] | None = None
    received: Callable[[], None] | None = None
    sent: Callable[[], None] | None = None
    responses: Callable[[Iterator[Any]], Iterator[Any]] | None = None
    end_on_success: bool = True  # False: `end` is called only for a call that failed


class Stage(Protocol):
    def bind(self, method: Method) -> Hooks | None:
        """The hooks for calls of `method`, or None when this stage has nothing to do there."""
        ...


class StagedInterceptor(grpc.ServerInterceptor):
    def __init__(self, *stages: Stage) -> None:
        """`stages` outermost first."""
        self._stages = stages
        self._cache: dict[str, grpc.RpcMethodHandler] = {}

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
            if inner is None:  # grpc answers UNIMPLEMENTED; not cached (see the docstring)
                return None
            wrapped = self._cache[method] = self._wrap(method, inner)
            return wrapped

    def _wrap(self, path: str, h: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        service, _, name = path.lstrip("/").rpartition("/")
        fn = h.unary_unary or h.unary_stream or h.stream_unary or h.stream_stream
        streaming = (h.request_streaming, h.response_streaming)
        method = Method(
            path, service, name, _KINDS[streaming], *streaming,
            callback=bool(getattr(fn, "experimental_non_blocking", False)), handler=h,
        )  # fmt: skip
        bound = [b for b in (stage.bind(method) for stage in self._stages) if b is not None]
        hooks = _Hooks(bound)
        # A stage that decodes takes the place of grpc's deserializer, which would answer a
        # body that does not parse with INTERNAL (`server.transport.decoding`).
        des = None if hooks.decode else h.request_deserializer
        decode = hooks.decode or _as_is
        ser = h.response_serializer
        # The request as the handler takes it: one message, or a client stream's messages.
        if h.request_streaming:
            request_of = functools.partial(hooks.requests, decode=decode)
        else:
            request_of = decode  # its field defaults to "request"
        if method.callback:
            behaviour = _unary_stream_by_callback(fn, hooks, decode)
        elif hooks.seen and not (h.request_streaming or h.response_streaming):
            behaviour = _one_response_seen(fn, hooks, request_of)
        else:
            behaviour = (_streamed if h.response_streaming else _one_response)(
                fn, hooks, request_of
            )
        return _HANDLER_OF[streaming](behaviour, des, ser)


def _as_is(message: Any, field: str = "request") -> Any:
    return message


class _Hooks:
    """The hooks of all stages for one method, in the order each point runs them."""

    def __init__(self, bound: Sequence[Hooks]) -> None:
        self.starts = [h.start for h in bound if h.start]
        # Ends innermost first, with how many starts ran before the stage was reached and the
        # index of its token (-1: a stage without a start has none).
        ends, ok_ends = [], []
        reached = 0
        for h in bound:
            if h.start:
                reached += 1
            if h.end:
                ends.append(entry := (reached, reached - 1 if h.start else -1, h.end))
                if h.end_on_success:
                    ok_ends.append(entry)
        self.ends, self.ok_ends = ends[::-1], ok_ends[::-1]
        decoders = [h.decode for h in bound if h.decode]
        if len(decoders) > 1:
            raise ValueError("at most one stage may decode requests")
        self.decode = decoders[0] if decoders else None
        self.received = [h.received for h in bound if h.received]
        seen, reached = [], 0
        for h in bound:
            reached += bool(h.start)
            if h.seen:
                seen.append((reached - 1 if h.start else -1, h.seen))
        self.seen = seen  # (index of the stage's token, hook)
        self.sent = [h.sent for h in bound if h.sent]
        self.wrappers = [h.responses for h in bound if h.responses][::-1]  # innermost first

    def start(self, context: grpc.ServicerContext) -> list[Any]:
        """Each started stage's token; if a start raises, the stages reached end with it."""
        tokens: list[Any] = []
        append = tokens.append
        try:
            for start in self.starts:
                append(start(context))
        except BaseException as exc:
            self.fail(tokens, context, exc)
        return tokens

    def end(
        self, tokens: list[Any], context: grpc.ServicerContext, error: BaseException | None
    ) -> None:
        """Run the ends of the stages reached, innermost first; raise what is left."""
        if error is None:
            for _, i, end in self.ok_ends:
                end(tokens[i] if i >= 0 else None, context, None)
            return
        started = len(tokens)
        for reached, i, end in self.ends:
            if reached <= started:
                try:
                    end(tokens[i] if i >= 0 else None, context, error)
                except BaseException as replaced:
                    error = replaced
        raise error

    def fail(
        self, tokens: list[Any], context: grpc.ServicerContext, error: BaseException
    ) -> NoReturn:
        """End the call with `error`, and raise it or what an end raised in its place."""
        self.end(tokens, context, error)
        raise error  # not reached: end raises

    def see(self, tokens: list[Any], request: Any) -> None:
        for i, seen in self.seen:
            seen(tokens[i] if i >= 0 else None, request)

    def requests(self, bodies: Iterator[Any], decode: Callable[[Any, str], Any]) -> Iterator[Any]:
        """A client stream's messages; the first bad one fails the call naming its index."""
        received = self.received
        for i, body in enumerate(bodies):
            request = decode(body, f"requests[{i}]")
            for each in received:
                each()
            yield request

    def stream(
        self, responses: Iterator[Any], tokens: list[Any], context: grpc.ServicerContext
    ) -> Iterator[Any]:
        """A server stream's responses. The stages' wrappers apply on the first step, where
        grpc starts holding the thread for the stream, and are closed however iterating ends
        (a dropped stream closes this generator), innermost last."""
        layers = [responses]
        try:
            for wrap in self.wrappers:
                layers.append(wrap(layers[-1]))
            sent = self.sent
            for response in layers[-1]:
                for each in sent:
                    each()
                yield response
        except BaseException as exc:
            for layer in reversed(layers[1:]):
                layer.close()  # type: ignore[attr-defined]
            self.fail(tokens, context, exc)
        self.end(tokens, context, None)


def _one_response(fn: Callable, hooks: _Hooks, request_of: Callable) -> Callable:
    """A unary or client-stream call: the call ends when the handler returns."""

    starts, sent, ok_ends = hooks.starts, hooks.sent, hooks.ok_ends

    def handler(request: Any, context: grpc.ServicerContext) -> Any:
        # The hot path of every unary call, so the loops of `_Hooks.start` and `.end` inline.
        tokens: list[Any] = []
        append = tokens.append
        try:
            for start in starts:
                append(start(context))
            response = fn(request_of(request), context)
        except BaseException as exc:
            hooks.fail(tokens, context, exc)
        for each in sent:
            each()
        for _, i, end in ok_ends:
            end(tokens[i] if i >= 0 else None, context, None)
        return response

    return handler


def _one_response_seen(fn: Callable, hooks: _Hooks, request_of: Callable) -> Callable:
    """A unary call some stage sees the request of (`Hooks.seen`): the others keep the
    inlined path of `_one_response`."""

    def handler(request: Any, context: grpc.ServicerContext) -> Any:
        tokens = hooks.start(context)
        try:
            request = request_of(request)
            hooks.see(tokens, request)
            response = fn(request, context)
        except BaseException as exc:
            hooks.fail(tokens, context, exc)
        for each in hooks.sent:
            each()
        hooks.end(tokens, context, None)
        return response

    return handler


def _streamed(fn: Callable, hooks: _Hooks, request_of: Callable) -> Callable:
    """A server or bidi stream: the call ends when its responses do (`_Hooks.stream`)."""

    def handler(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        tokens = hooks.start(context)
        try:
            request = request_of(request)
            if hooks.seen and not isinstance(request, Iterator):
                hooks.see(tokens, request)
            responses = fn(request, context)
        except BaseException as exc:
            hooks.fail(tokens, context, exc)
        return hooks.stream(responses, tokens, context)

    return handler


def _unary_stream_by_callback(fn: Callable, hooks: _Hooks, decode: Callable) -> Callable:
    """grpc's callback form of a server stream (`experimental_non_blocking`, which the health
    service's Watch uses): the handler registers a callback and returns, so the stream holds
    no handler thread. A None ends the stream, and the call; grpc must get it once, so the
    first None is forwarded and anything after it dropped."""

    def handler(
        body: Any, context: grpc.ServicerContext, send_response_callback: Callable[[Any], None]
    ) -> None:
        tokens = hooks.start(context)
        lock = threading.Lock()
        ended = False

        def send(response: Any) -> None:
            nonlocal ended
            with lock:
                if ended:
                    return
                ended = response is None
            if response is None:
                hooks.end(tokens, context, None)
            else:
                for each in hooks.sent:
                    each()
            send_response_callback(response)

        try:
            fn(decode(body, "request"), context, send)
        except BaseException as exc:
            with lock:
                ended = True  # the call ends here: a later None must not end it again
            hooks.fail(tokens, context, exc)

    handler.experimental_non_blocking = True  # type: ignore[attr-defined]
    return handler

"""The open-stream bound: a streaming call holds a slot of `server.transport.stream_slots` while it holds
its handler thread, or is refused with RESOURCE_EXHAUSTED, so threads stay free for unary calls.

A client stream holds its thread while its handler runs; a server or bidi stream while its
responses are iterated (the slot is taken on the first step, and given back however iterating
ends: a dropped stream closes the generator). grpc's callback form (health Watch) holds no
thread, and unary calls no slot.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc

from server.transport.interceptors.chain import Hooks, Method
from server.transport.stream_slots import StreamSlots


class StreamLimit:
    def __init__(self, slots: StreamSlots) -> None:
        self._slots = slots

    def bind(self, method: Method) -> Hooks | None:
        if method.callback or not (method.request_streaming or method.response_streaming):
            return None
        if method.response_streaming:
            return _HeldWhileResponding(self._slots)
        return _HeldWhileHandling(self._slots)


class _HeldWhileHandling(Hooks):
    def __init__(self, slots: StreamSlots) -> None:
        self._slots = slots

    def start(self, context: grpc.ServicerContext) -> None:
        self._slots.take()

    def end(self, token: Any, context: grpc.ServicerContext, error: BaseException | None) -> None:
        self._slots.give_back()


class _HeldWhileResponding(Hooks):
    def __init__(self, slots: StreamSlots) -> None:
        self._slots = slots

    def responses(self, responses: Iterator[Any]) -> Iterator[Any]:  # type: ignore[override]
        with self._slots.held():
            yield from responses

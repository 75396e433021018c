"""The count of scoring calls in flight (`server.inflight.InFlight`), the batching executor's
hint that company may come.

Only unary calls of the services that may reach the executor count: a health check or a
campaign plan in flight never joins a batch, so a batching leader must not wait for it, and a
stream stays open for hours. A call counts from before its request is decoded until its handler
returned. Kept apart from every other stage so that it goes with one line when the count moves
into the data plane.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import grpc

from server.inflight import InFlight
from server.interceptors.chain import Hooks, Method


class ScoringInFlight:
    def __init__(self, in_flight: InFlight, batched_services: Collection[str]) -> None:
        self._hooks = _Counted(in_flight)
        self._batched = frozenset(batched_services)

    def bind(self, method: Method) -> Hooks | None:
        if method.kind != "unary" or method.service not in self._batched:
            return None
        return self._hooks


class _Counted(Hooks):
    def __init__(self, in_flight: InFlight) -> None:
        self._in_flight = in_flight

    def start(self, context: grpc.ServicerContext) -> None:
        self._in_flight.enter()

    def end(self, token: Any, context: grpc.ServicerContext, error: BaseException | None) -> None:
        self._in_flight.leave()

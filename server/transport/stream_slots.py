"""How many streaming calls may be open at once in one server process.

The threaded gRPC server runs each call on a handler thread, and a streaming call keeps its
thread while it is open: an alert watcher for hours. With as many open streams as handler
threads, no thread is left for unary calls and they stop being answered (measured before this
bound: 40 WatchChurnAlerts streams on 32 threads made a health Check time out). So streams
beyond the bound are refused at once with RESOURCE_EXHAUSTED. Health Watch is not counted: it
runs in grpc's callback form and holds no thread (`server.transport.interceptors.stream_limits`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Gauge

from server.errors import ResourceExhausted


class StreamSlots:
    def __init__(self, limit: int, threads: int, gauge: Gauge) -> None:
        self.limit = limit
        self._threads = threads
        self._gauge = gauge
        self._lock = threading.Lock()
        self._open = 0

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold a slot while a stream holds its handler thread, or refuse the stream."""
        self.take()
        try:
            yield
        finally:
            self.give_back()

    def take(self) -> None:
        """Take a slot, or refuse the stream with RESOURCE_EXHAUSTED."""
        with self._lock:
            if self._open >= self.limit:
                raise ResourceExhausted(
                    f"too many open streams: {self.limit} of this process's {self._threads} "
                    "handler threads may serve streams, the rest stay free for unary calls; "
                    "retry later, or raise --max-open-streams and --threads",
                    subject="streams",
                    description=f"at most {self.limit} streaming calls open per server process",
                )
            self._open += 1
        self._gauge.inc()

    def give_back(self) -> None:
        with self._lock:
            self._open -= 1
        self._gauge.dec()

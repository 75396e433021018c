"""The threads gRPC runs handlers on: a bounded pool with the least work per call.

grpc's sync server hands every call to `submit` and only ever calls `add_done_callback` on
what comes back (to count calls in flight for --max-concurrent-rpcs). A ThreadPoolExecutor
pays, per call, a Future built on a Condition, an idle-thread Semaphore taken on submit and
released (a Condition notify) when the call ends, and a Condition round on completion; under
load that is several microseconds of the one core's time per call for nothing gRPC uses.
Here a call is a slotted object with one plain lock, and threads start as calls need them.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent import futures
from typing import Any

log = logging.getLogger("server.transport.handler_pool")


class _Call:
    """A submitted call; gRPC only adds done callbacks to it."""

    __slots__ = ("_callbacks", "_done", "_lock", "args", "fn", "kwargs")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]):
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[Any], object]] = []
        self._done = False

    def add_done_callback(self, callback: Callable[[Any], object]) -> None:
        with self._lock:
            if not self._done:
                self._callbacks.append(callback)
                return
        callback(self)

    def done(self) -> bool:
        return self._done

    def run(self) -> None:
        try:
            self.fn(*self.args, **self.kwargs)
        except BaseException:  # grpc's behaviours handle their own errors; never lose a thread
            log.exception("a gRPC handler raised past grpc")
        with self._lock:
            self._done = True
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback(self)
            except Exception:
                log.exception("a call's done callback raised")


class HandlerPool(futures.Executor):
    """At most `threads` threads; a new one starts when a call finds none idle."""

    def __init__(self, threads: int, name_prefix: str = "grpc-handler") -> None:
        if threads < 1:
            raise ValueError("threads must be >= 1")
        self._max = threads
        self._prefix = name_prefix
        self._queue: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = 0  # threads waiting for a call (changed under _lock)
        self._closed = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        call = _Call(fn, args, kwargs)
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit after shutdown")
            if self._idle:
                self._idle -= 1  # claimed: the next submit will not count on this thread
            elif len(self._threads) < self._max:
                self._start()
        self._queue.put(call)
        return call

    def _start(self) -> None:
        thread = threading.Thread(
            target=self._work, name=f"{self._prefix}_{len(self._threads)}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        while True:
            call = self._queue.get()
            if call is None:
                return
            call.run()
            del call
            with self._lock:
                self._idle += 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._queue.put(None)
        if wait:
            for thread in threads:
                thread.join()

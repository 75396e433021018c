"""How many unary calls the server is handling, and when two last overlapped.

The batching executor's only hint that company may come. The count alone is a poor hint:
under load most calls wait inside gRPC's core for a handler thread to get the GIL, so a
leader usually sees only itself in flight (measured: 1 in over 95% of leader decisions at 16
calls in flight). What tells load apart from a sequential client is that calls overlap at
all: a client that waits for each reply before sending the next never makes two overlap.
Streaming calls are not counted: an alert watcher stays open for hours.
"""

from __future__ import annotations

import threading
import time

# How long an overlap of two calls counts as "the server is under concurrent load".
OVERLAP_MEMORY_S = 0.05


class InFlight:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._last_overlap = -float("inf")

    @property
    def count(self) -> int:
        return self._count

    def concurrent(self) -> bool:
        """More than one call in flight now, or within the last OVERLAP_MEMORY_S."""
        return self._count > 1 or time.monotonic() - self._last_overlap < OVERLAP_MEMORY_S

    def enter(self) -> None:
        with self._lock:
            self._count += 1
            if self._count > 1:
                self._last_overlap = time.monotonic()

    def leave(self) -> None:
        with self._lock:
            self._count -= 1

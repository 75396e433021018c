"""How many unary calls the server is handling right now.

The batching executor's only hint that company may come: a batch leader with a queue delay
waits for more rows only while other unary calls are in flight, so a lone caller never waits.
Streaming calls are not counted: an alert watcher stays open for hours and would make every
leader wait for nothing.
"""

from __future__ import annotations

import threading


class InFlight:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    @property
    def count(self) -> int:
        return self._count

    def enter(self) -> None:
        with self._lock:
            self._count += 1

    def leave(self) -> None:
        with self._lock:
            self._count -= 1

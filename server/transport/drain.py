"""Every call the server is handling, and the gate that refuses new ones during a drain.

Why the drain does not use grpc's `server.stop(grace)`: gRPC core cancels, at the moment of
its shutdown, every call that has reached the process but that the Python server has not yet
picked up. grpc's threaded server asks core for one call per method at a time, so under load
calls queue inside core (a handler thread needs the GIL first); shutdown kills them with
CANCELLED (grpc/grpc#41785), and so it does calls that arrive after shutdown but before the
client reads the GOAWAY. Measured with 16 client threads of PredictChurn: up to 15 CANCELLED
per SIGTERM, some sent before the signal.

So the drain happens here instead, above core: calls keep being picked up, those that reach a
handler during the first SETTLE_S of the drain (the calls queued in core when it began, which
nothing in Python can see) are served, later ones get UNAVAILABLE (clients retry it), and the
server waits until every admitted call has ended (its status sent) or the grace period is over.
Core is never shut down: the process exits, and whatever reaches it after that finds the
connection closed, which clients also see as UNAVAILABLE.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

# Exit codes of `python -m server`, and of the supervisor for its workers.
EXIT_DRAINED = 0  # every call in flight at SIGTERM finished within the grace period
EXIT_ABANDONED = 3  # calls were still running when the grace period ended: abandoned
# After the drain, closing the stores and the registry gets at most this long, so the process
# exits within --grace-seconds + CLOSE_TIMEOUT_S whatever a handler or a close is stuck on.
CLOSE_TIMEOUT_S = 3.0
# The last resort: should even that exit not happen (a handler holding the GIL in C code
# starves the main thread), the kernel ends the process with SIGALRM this long after the grace
# period (`server.__main__`). The supervisor kills a worker a second after that.
HARD_STOP_AFTER_GRACE_S = 5

# How long after the drain began calls that reach a handler are still served: they were queued
# in gRPC core before it began (grpc hands them over within milliseconds; this is slack for a
# busy host). Never longer than the grace period.
SETTLE_S = 0.5


class CallGate:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._by_method: Counter[str] = Counter()
        self._active = 0
        self._refuse_after: float | None = None  # monotonic time; None until the drain

    @property
    def active(self) -> int:
        return self._active

    def enter(self, method: str) -> bool:
        """Count a call that reached its handler; False (not counted) if it must be refused."""
        with self._lock:
            if self._refuse_after is not None and time.monotonic() >= self._refuse_after:
                return False
            self._active += 1
            self._by_method[method] += 1
        return True

    def leave(self, method: str) -> None:
        """The call ended (its status is sent, or it was cancelled)."""
        with self._lock:
            self._active -= 1
            self._by_method[method] -= 1
            if not self._by_method[method]:
                del self._by_method[method]
            if not self._active:
                self._idle.notify_all()

    def drain(self, grace_seconds: float) -> None:
        """From now on calls are served for min(SETTLE_S, grace) more, then refused."""
        with self._lock:
            self._refuse_after = time.monotonic() + min(SETTLE_S, grace_seconds)

    def wait_idle(self, deadline: float) -> dict[str, int]:
        """Wait until no call is in flight or the monotonic `deadline`; returns the calls still
        in flight by method (empty when everything finished)."""
        with self._lock:
            while True:
                now = time.monotonic()
                settling = self._refuse_after is not None and now < self._refuse_after
                if (not self._active and not settling) or now >= deadline:
                    return dict(self._by_method)
                # While settling, calls may still come: wake when it ends to look again.
                until = min(deadline, self._refuse_after) if settling else deadline
                self._idle.wait(until - now)

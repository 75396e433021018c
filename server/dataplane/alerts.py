"""Live churn alerts: every scored customer at or above a subscriber's threshold, to every
subscriber, without ever blocking scoring. Each subscriber has a bounded queue; when it is full
the oldest alert is dropped and counted, so a slow subscriber loses alerts, not throughput."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from crm.v1 import churn_pb2


@dataclass(frozen=True)
class Alert:
    customer_id: str
    request_key: str
    probability: float
    risk_level: int
    model_name: str
    model_version: int
    scored_at_ns: int
    # Proactive alerts (server.freshness): why, the level before, drivers and the as-of time.
    reason: str = ""
    previous_level: int = 0
    drivers: tuple[tuple[str, float, float], ...] = ()  # (feature, value, contribution)
    as_of_ns: int = 0


@dataclass(frozen=True, slots=True)
class Scored:
    """One call's scored rows as alerts are made of them (row k of each field)."""

    probabilities: np.ndarray
    levels: np.ndarray
    customer_ids: Sequence[str]
    request_keys: Sequence[str]
    model: tuple[str, int]
    scored_at_ns: int
    reason: str = ""
    previous_levels: np.ndarray | None = None
    drivers: Sequence[tuple[tuple[str, float, float], ...]] | None = None
    as_of_ns: int = 0

    def alert(self, k: int) -> Alert:
        return Alert(
            self.customer_ids[k], self.request_keys[k], float(self.probabilities[k]),
            int(self.levels[k]), self.model[0], self.model[1], self.scored_at_ns, self.reason,
            0 if self.previous_levels is None else int(self.previous_levels[k]),
            () if self.drivers is None else self.drivers[k], self.as_of_ns,
        )  # fmt: skip


class Subscription:
    def __init__(self, min_probability: float, min_level: int, capacity: int) -> None:
        self.min_probability = min_probability
        self.min_level = min_level
        self._queue: deque[Alert] = deque()
        self._capacity = capacity
        self._cond = threading.Condition()
        self.dropped = 0
        self.closed = False

    def offer(self, alert: Alert) -> None:
        with self._cond:
            if len(self._queue) >= self._capacity:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(alert)
            self._cond.notify()

    def take(self, timeout: float) -> Alert | None:
        with self._cond:
            if not self._queue and not self.closed:
                self._cond.wait(timeout)
            return self._queue.popleft() if self._queue else None

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


class AlertHub:
    def __init__(self, capacity: int = 1000) -> None:
        self.capacity = capacity
        self._subs: list[Subscription] = []
        self._lock = threading.Lock()

    def subscribe(self, min_probability: float, min_level: int) -> Subscription:
        sub = Subscription(min_probability, min_level, self.capacity)
        with self._lock:
            self._subs = [*self._subs, sub]
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        sub.close()
        with self._lock:
            self._subs = [s for s in self._subs if s is not sub]

    def close(self) -> None:
        for sub in list(self._subs):
            self.unsubscribe(sub)

    def subscriptions(self) -> list[Subscription]:
        return self._subs

    def deliver(self, alerts: Sequence[Alert]) -> None:
        """Alerts scored elsewhere (another replica): each subscriber takes those its own
        filter passes, in the order given."""
        for sub in self._subs:
            for alert in alerts:
                if alert.probability >= sub.min_probability and alert.risk_level >= sub.min_level:
                    sub.offer(alert)

    def publish(self, scored: Scored) -> None:
        """Alerts of a call scored here, for every watcher (a relaying hub: on every replica)."""
        self.publish_here(scored)

    def publish_here(self, scored: Scored) -> None:
        """This process's watchers only: for rises every replica finds itself (proactive alerts:
        each replica applies the same lines and ages at the same midnight), so none doubles."""
        subs = self._subs  # copy-on-write list: no lock on the scoring path
        if not subs:
            return
        for sub in subs:
            hits = np.flatnonzero(
                (scored.probabilities >= sub.min_probability) & (scored.levels >= sub.min_level)
            )
            for k in hits:
                sub.offer(scored.alert(k))


def to_message(alert: Alert, dropped: int) -> churn_pb2.WatchChurnAlertsResponse:
    response = churn_pb2.WatchChurnAlertsResponse(dropped_total=dropped)
    a = response.alert
    a.customer_id = alert.customer_id
    a.request_key = alert.request_key
    a.probability = alert.probability
    a.risk_level = alert.risk_level  # type: ignore[assignment]
    a.model.name = alert.model_name
    a.model.version = alert.model_version
    a.scored_at.FromNanoseconds(alert.scored_at_ns)
    if alert.reason:
        a.reason = alert.reason
        a.previous_risk_level = alert.previous_level  # type: ignore[assignment]
        a.as_of.FromNanoseconds(alert.as_of_ns)
        for feature, value, contribution in alert.drivers:
            a.drivers.add(feature=feature, value=value, contribution=contribution)
    return response

"""Churn alerts across replicas: PostgreSQL LISTEN/NOTIFY between the alert hubs of one
namespace (tenant) on every replica sharing the database.

Scoring never waits on the database: `RelayedHub.publish` delivers locally as AlertHub does,
then keeps only the alerts some subscription on another replica takes (`alert_wire.floors`,
refreshed from the `alert_subscriptions` table) and appends them to a bounded outbox (oldest
dropped and counted when full). One sender thread per process drains the outbox into NOTIFY
payloads and keeps this replica's subscriptions in the table (rewritten on change and on every
heartbeat, so a killed replica's rows expire). One listener thread per process, on its own
connection (not the pool's: LISTEN belongs to a session), reconnects with backoff and hands
other replicas' alerts to the local hubs of their namespace, where each subscriber's own filter
applies. A replica skips its own payloads: it delivered those alerts already.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque

import numpy as np
import psycopg

from server.dataplane.alerts import Alert, AlertHub, Scored, Subscription
from server.errors import Unavailable
from server.metrics import ServerMetrics
from server.postgres.alert_wire import decode, encode, floors, wanted
from server.postgres.pool import CONNECT_TIMEOUT_S, PoolUser

log = logging.getLogger("server.alerts")

ALERTS_CHANNEL = "crm_churn_alerts"
SUBSCRIPTIONS_CHANNEL = "crm_alert_subscriptions"
OUTBOX_ALERTS = 10_000  # alerts waiting for NOTIFY; beyond it the oldest is dropped
HEARTBEAT_S = 5.0  # rewrite this replica's subscription rows this often
EXPIRY_S = 30.0  # rows not rewritten for this long are a lost replica's
REFRESH_S = 10.0  # re-read every replica's subscriptions this often (missed notifications)
LISTEN_POLL_S = 0.5  # how long the listener waits for notifications before checking for stop
MAX_BACKOFF_S = 5.0


class AlertRelay:
    """The process's link to other replicas for one database: an outbox, a sender thread and a
    listener thread, shared by the hubs of every namespace."""

    def __init__(self, url: str, metrics: ServerMetrics, replica: str | None = None) -> None:
        self.url = url
        self.replica = replica or uuid.uuid4().hex
        self._pool = PoolUser(url, "alert relay")  # migrates the schema on first use
        self._sent = metrics.alerts_relayed.labels("sent")
        self._received = metrics.alerts_relayed.labels("received")
        self._dropped = {
            reason: metrics.alerts_relay_dropped.labels(reason)
            for reason in ("queue_full", "too_large", "database")
        }
        self._hubs: dict[str, tuple[AlertHub, ...]] = {}  # copy-on-write, read by the listener
        self._floors: dict[str, np.ndarray] = {}  # replaced whole, read on the scoring path
        self._outbox: deque[tuple[str, Alert]] = deque()
        self._cond = threading.Condition()
        self._dirty = True  # this replica's subscriptions changed since they were written
        self._refresh = True  # another replica's changed: re-read the table
        self._refreshed = 0  # refreshes done, for wait_refreshed
        self._seq = 0
        self._stop = threading.Event()
        self._listening = threading.Event()  # subscriptions are advertised only while set
        self._threads = [
            threading.Thread(target=self._send_loop, name="alert-relay-send", daemon=True),
            threading.Thread(target=self._listen_loop, name="alert-relay-listen", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    # -- the hubs' side -------------------------------------------------------------------

    def attach(self, namespace: str, hub: AlertHub) -> None:
        with self._cond:
            self._hubs = {**self._hubs, namespace: (*self._hubs.get(namespace, ()), hub)}

    def detach(self, namespace: str, hub: AlertHub) -> None:
        with self._cond:
            rest = tuple(h for h in self._hubs.get(namespace, ()) if h is not hub)
            self._hubs = {k: v for k, v in self._hubs.items() if k != namespace}
            if rest:
                self._hubs[namespace] = rest
            self._dirty = True
            self._cond.notify()

    def subscriptions_changed(self) -> None:
        with self._cond:
            self._dirty = True
            self._cond.notify()

    def offer(self, namespace: str, scored: Scored) -> None:
        """On the scoring path: queue the alerts another replica would take; never blocks on
        the database (one short lock, only when something is to be sent)."""
        floor = self._floors.get(namespace)
        if floor is None:
            return
        hits = wanted(floor, scored.probabilities, scored.levels)
        if not len(hits):
            return
        items = [(namespace, scored.alert(k)) for k in hits]
        with self._cond:
            self._outbox.extend(items)
            over = len(self._outbox) - OUTBOX_ALERTS
            for _ in range(max(0, over)):
                self._outbox.popleft()
            self._cond.notify()
        if over > 0:
            self._dropped["queue_full"].inc(over)

    def wants(self, namespace: str) -> np.ndarray | None:
        """The floors other replicas' subscriptions set for `namespace` (None: none)."""
        return self._floors.get(namespace)

    def wait_refreshed(self, count: int, timeout: float) -> int:
        """Wait until more than `count` refreshes of the floors are done; returns the number."""
        with self._cond:
            self._cond.wait_for(lambda: self._refreshed > count, timeout)
            return self._refreshed

    # -- sender thread --------------------------------------------------------------------

    def _send_loop(self) -> None:
        next_heartbeat = next_refresh = 0.0
        backoff = 0.1
        while not self._stop.is_set():
            with self._cond:
                due = min(next_heartbeat, next_refresh) - time.monotonic()
                self._cond.wait_for(
                    lambda: self._outbox or self._dirty or self._refresh or self._stop.is_set(),
                    max(0.0, due),
                )
                batch = list(self._outbox)
                self._outbox.clear()
                dirty, self._dirty = self._dirty, False
                refresh, self._refresh = self._refresh, False
            if self._stop.is_set():
                break
            now = time.monotonic()
            try:
                if batch:
                    self._send(batch)  # empties it once every alert is counted
                if dirty or now >= next_heartbeat:
                    self._write_subscriptions(announce=dirty)
                    dirty = False
                    next_heartbeat = now + HEARTBEAT_S
                if refresh or now >= next_refresh:
                    self._read_floors()
                    refresh = False
                    next_refresh = now + REFRESH_S
                backoff = 0.1
            except Exception as err:  # a lost database, or a bug: this thread must go on
                if batch:
                    self._dropped["database"].inc(len(batch))
                unreachable = isinstance(err, (psycopg.Error, Unavailable))
                log.log(
                    logging.WARNING if unreachable else logging.ERROR,
                    "alert relay: sending failed",
                    extra={"error": repr(err)},
                    exc_info=not unreachable,
                )
                with self._cond:
                    self._dirty |= dirty
                    self._refresh |= refresh
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
        self._forget_subscriptions()

    def _send(self, batch: list[tuple[str, Alert]]) -> None:
        """NOTIFY the batch in one transaction. Sent alerts are counted just before the commit,
        so no replica receives one not counted yet; the batch is emptied once counted (what is
        left when this raises is counted lost)."""
        payloads, too_large = encode(self.replica, self._seq, batch)
        self._seq += len(payloads)
        if too_large:
            self._dropped["too_large"].inc(too_large)
        if not payloads:
            batch.clear()
            return
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.executemany("SELECT pg_notify(%s, %s)", [(ALERTS_CHANNEL, p) for p in payloads])
            self._sent.inc(len(batch) - too_large)
            batch.clear()

    def _local_subscriptions(self) -> set[tuple[str, float, int]]:
        subs: set[tuple[str, float, int]] = set()
        for namespace, hubs in self._hubs.items():
            for hub in hubs:
                subs.update(
                    (namespace, s.min_probability, s.min_level) for s in hub.subscriptions()
                )
        return subs

    def _write_subscriptions(self, announce: bool) -> None:
        """Replace this replica's rows (and push their expiry out); drop expired rows of lost
        replicas. Others are told when something changed."""
        subscriptions = self._local_subscriptions() if self._listening.is_set() else set()
        rows = [(self.replica, ns, p, lv) for ns, p, lv in sorted(subscriptions)]
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("DELETE FROM alert_subscriptions WHERE replica = %s", (self.replica,))
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO alert_subscriptions"
                    " (replica, namespace, min_probability, min_level, expires_at)"
                    " VALUES (%s, %s, %s, %s, now() + make_interval(secs => %s))",
                    [(*row, EXPIRY_S) for row in rows],
                )
            expired = conn.execute(
                "DELETE FROM alert_subscriptions WHERE expires_at < now()"
            ).rowcount
            if announce or expired:
                conn.execute("SELECT pg_notify(%s, %s)", (SUBSCRIPTIONS_CHANNEL, self.replica))

    def _read_floors(self) -> None:
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT namespace, min_probability, min_level FROM alert_subscriptions"
                " WHERE replica <> %s AND expires_at > now()",
                (self.replica,),
            ).fetchall()
        self._floors = floors(rows)
        with self._cond:
            self._refreshed += 1
            self._cond.notify_all()

    def _forget_subscriptions(self) -> None:
        """On close: remove this replica's rows now rather than at their expiry."""
        try:
            with self._pool.connection() as conn, conn.transaction():
                conn.execute("DELETE FROM alert_subscriptions WHERE replica = %s", (self.replica,))
                conn.execute("SELECT pg_notify(%s, %s)", (SUBSCRIPTIONS_CHANNEL, self.replica))
        except (psycopg.Error, Unavailable):
            pass  # they expire
        finally:
            self._pool.close()

    # -- listener thread ------------------------------------------------------------------

    def _listen_loop(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self.url,
                    autocommit=True,
                    connect_timeout=int(CONNECT_TIMEOUT_S),
                    application_name=f"crm-alerts-{self.replica}"[:63],
                ) as conn:
                    conn.execute(f"LISTEN {ALERTS_CHANNEL}")
                    conn.execute(f"LISTEN {SUBSCRIPTIONS_CHANNEL}")
                    self._set_listening(True)
                    backoff = 0.1
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=LISTEN_POLL_S):
                            self._on_notify(note.channel, note.payload)
            except Exception as err:  # a lost database, or a bug: this thread must go on
                self._set_listening(False)
                if self._stop.is_set():
                    break
                log.log(
                    logging.WARNING if isinstance(err, psycopg.Error) else logging.ERROR,
                    "alert relay: listener reconnecting",
                    extra={"error": repr(err)},
                    exc_info=not isinstance(err, psycopg.Error),
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    def _set_listening(self, listening: bool) -> None:
        """Advertise this replica's subscriptions only while it can hear alerts: a replica that
        knows of one can count on its NOTIFY reaching that subscriber. (Re)connected, re-read
        the others' too: changes made while not listening were missed."""
        with self._cond:
            if listening:
                self._listening.set()
                self._refresh = True
            else:
                self._listening.clear()
            self._dirty = True
            self._cond.notify()

    def _request_refresh(self) -> None:
        with self._cond:
            self._refresh = True
            self._cond.notify()

    def _on_notify(self, channel: str, payload: str) -> None:
        if channel == SUBSCRIPTIONS_CHANNEL:
            if payload != self.replica:
                self._request_refresh()
            return
        try:
            message = decode(payload)
        except (ValueError, KeyError, TypeError):
            log.warning("alert relay: malformed payload ignored")
            return
        if message.replica == self.replica:
            return  # delivered locally when scored
        self._received.inc(len(message.alerts))
        for hub in self._hubs.get(message.namespace, ()):
            hub.deliver(message.alerts)

    def close(self) -> None:
        """Stop both threads; the sender removes this replica's rows on its way out."""
        with self._cond:
            self._stop.set()
            self._cond.notify_all()


_relays: dict[str, tuple[AlertRelay, int]] = {}
_relays_lock = threading.Lock()


def _acquire(url: str, metrics: ServerMetrics) -> AlertRelay:
    with _relays_lock:
        relay, users = _relays.get(url, (None, 0))
        if relay is None:
            relay = AlertRelay(url, metrics)
        _relays[url] = (relay, users + 1)
        return relay


def _release(relay: AlertRelay) -> None:
    with _relays_lock:
        found, users = _relays.get(relay.url, (None, 0))
        if found is not relay:
            return
        if users > 1:
            _relays[relay.url] = (relay, users - 1)
            return
        del _relays[relay.url]
    relay.close()


class RelayedHub(AlertHub):
    """An AlertHub whose alerts also reach the same namespace's hubs on other replicas."""

    def __init__(self, capacity: int, relay: AlertRelay, namespace: str) -> None:
        super().__init__(capacity)
        self.namespace = namespace
        self._relay: AlertRelay | None = relay
        relay.attach(namespace, self)

    def subscribe(self, min_probability: float, min_level: int) -> Subscription:
        sub = super().subscribe(min_probability, min_level)
        relay = self._relay
        if relay is not None:
            relay.subscriptions_changed()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        super().unsubscribe(sub)
        relay = self._relay
        if relay is not None:
            relay.subscriptions_changed()

    def publish(self, scored: Scored) -> None:
        super().publish(scored)
        relay = self._relay
        if relay is not None:
            relay.offer(self.namespace, scored)

    def close(self) -> None:
        super().close()
        relay, self._relay = self._relay, None
        if relay is not None:
            relay.detach(self.namespace, self)
            _release(relay)


def relayed_hub(url: str, capacity: int, metrics: ServerMetrics, namespace: str) -> RelayedHub:
    """A hub of `namespace` on the process's relay for the database at `url`."""
    return RelayedHub(capacity, _acquire(url, metrics), namespace)

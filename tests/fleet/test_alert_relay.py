"""The alert relay on its own: payloads, per-namespace floors, and two relays (two replicas'
worth) on one real PostgreSQL database, in one process."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import psycopg
import pytest

from server.dataplane.alerts import Alert, Scored, Subscription
from server.metrics import ServerMetrics
from server.postgres.alert_wire import MAX_PAYLOAD_BYTES, decode, encode, floors, wanted
from server.postgres.alerts import AlertRelay, RelayedHub

LOW, MEDIUM, HIGH, CRITICAL = 1, 2, 3, 4


def _alert(key: str, p: float = 0.5, level: int = LOW, customer: str = "c") -> Alert:
    return Alert(customer, key, p, level, "churn", 3, 1_700_000_000_000_000_000)


def test_payloads_fit_notify_keep_order_and_split_by_namespace() -> None:
    items = [("t1", _alert(f"k{i:04d}-" + "x" * 60, p=i / 1000)) for i in range(400)]
    items += [("t2", _alert("other"))]
    items += [("t2", _alert("huge", customer="c" * 4000 + "é" * 2000))]  # cannot travel
    payloads, too_large = encode("replica-a", 7, items)
    assert too_large == 1
    assert len(payloads) > 3
    assert all(len(p.encode()) <= MAX_PAYLOAD_BYTES for p in payloads)
    decoded = [decode(p) for p in payloads]
    assert {d.replica for d in decoded} == {"replica-a"}
    assert [d.namespace for d in decoded][-1] == "t2"
    assert [(d.namespace, a) for d in decoded for a in d.alerts] == items[:-1]
    assert len(set(payloads)) == len(payloads)  # distinct, so one transaction keeps them all


def test_floors_are_the_least_probability_taken_per_level() -> None:
    table = floors([("t1", 0.9, LOW), ("t1", 0.2, CRITICAL), ("t2", 0.5, HIGH)])
    assert set(table) == {"t1", "t2"}
    probs = np.array([0.3, 0.3, 0.95, 0.6, 0.6])
    levels = np.array([LOW, CRITICAL, MEDIUM, HIGH, MEDIUM])
    assert wanted(table["t1"], probs, levels).tolist() == [1, 2]
    assert wanted(table["t2"], probs, levels).tolist() == [3]


@dataclass
class Pair:
    """Two replicas' relays on one database; `hub` makes hubs closed after the test."""

    a: AlertRelay
    b: AlertRelay
    metrics_a: ServerMetrics
    hub: Callable[[AlertRelay, str], RelayedHub]


@pytest.fixture
def pair(pg_url: str) -> Iterator[Pair]:
    metrics_a = ServerMetrics()
    a = AlertRelay(pg_url, metrics_a, replica="replica-a")
    b = AlertRelay(pg_url, ServerMetrics(), replica="replica-b")
    hubs: list[RelayedHub] = []

    def hub(relay: AlertRelay, namespace: str) -> RelayedHub:
        hubs.append(RelayedHub(5000, relay, namespace))
        return hubs[-1]

    yield Pair(a, b, metrics_a, hub)
    for h in hubs:
        h.close()
    a.close()
    b.close()


def _wait_for_floors(relay: AlertRelay, *namespaces: str, present: bool = True) -> None:
    """Until `relay` knows (or, with present=False, no longer knows) another replica's
    subscriptions in each namespace; refreshes are its events."""
    deadline = time.monotonic() + 20
    seen = 0
    while not all((relay.wants(ns) is not None) == present for ns in namespaces):
        left = deadline - time.monotonic()
        assert left > 0, f"{relay.replica}: subscriptions in {namespaces} present != {present}"
        seen = relay.wait_refreshed(seen, left)


def _publish(hub: RelayedHub, *alerts: tuple[str, float, int]) -> None:
    hub.publish(
        Scored(
            np.array([p for _, p, _ in alerts]),
            np.array([lv for _, _, lv in alerts]),
            customer_ids=[f"cust-{k}" for k, _, _ in alerts],
            request_keys=[k for k, _, _ in alerts],
            model=("churn", 3),
            scored_at_ns=time.time_ns(),
        )
    )


def _keys(sub: Subscription, n: int) -> list[str]:
    got = []
    for _ in range(n):
        alert = sub.take(timeout=20)
        assert alert is not None, f"only {got} arrived"
        got.append(alert.request_key)
    return got


def _sent(relay_metrics: ServerMetrics) -> float:
    value = relay_metrics.registry.get_sample_value(
        "crm_alerts_relayed_total", {"direction": "sent"}
    )
    return value or 0.0


def test_two_relays_keep_namespaces_and_thresholds_apart(pair: Pair) -> None:
    a, b = pair.a, pair.b
    a_t1, a_t2, b_t1, b_t2 = (pair.hub(r, ns) for r in (a, b) for ns in ("t1", "t2"))
    b_all = b_t1.subscribe(0.0, LOW)
    b_high = b_t2.subscribe(0.5, LOW)
    a_local = a_t1.subscribe(0.0, LOW)
    _wait_for_floors(a, "t1", "t2")
    _wait_for_floors(b, "t1")

    _publish(a_t2, ("t2-below", 0.3, LOW))  # nobody elsewhere takes it: never sent
    _publish(a_t1, ("t1-a", 0.3, LOW))
    _publish(a_t2, ("t2-above", 0.7, LOW))
    _publish(a_t1, ("t1-end", 0.3, LOW))
    assert _keys(b_all, 2) == ["t1-a", "t1-end"]  # no t2 alert in between
    assert _keys(b_high, 1) == ["t2-above"]  # the first one it takes: t2-below never came
    assert _sent(pair.metrics_a) == 3

    # B's alert committed after A's (B saw A's last one first), so A's listener sees its own
    # notifications before B's: had it delivered them again, they would come first.
    _publish(b_t1, ("t1-from-b", 0.3, LOW))
    assert _keys(a_local, 3) == ["t1-a", "t1-end", "t1-from-b"]
    assert _keys(b_all, 1) == ["t1-from-b"]  # B's own, delivered locally

    # Many alerts at once: split over several payloads, in order, none lost.
    many = [(f"bulk-{i:05d}-" + "k" * 40, 0.6, HIGH) for i in range(2000)]
    _publish(a_t1, *many)
    assert _keys(b_all, len(many)) == [k for k, _, _ in many]
    assert b_all.dropped == 0


def test_a_closed_replica_takes_its_subscriptions_away(pair: Pair) -> None:
    pair.hub(pair.a, "")
    hub_b = pair.hub(pair.b, "")
    hub_b.subscribe(0.2, MEDIUM)
    _wait_for_floors(pair.a, "")
    floor = pair.a.wants("")
    assert floor is not None and floor[MEDIUM] == 0.2 and np.isinf(floor[LOW])
    hub_b.close()
    pair.b.close()
    _wait_for_floors(pair.a, "", present=False)


def test_a_listener_whose_connection_is_killed_reconnects(pair: Pair, pg_url: str) -> None:
    hub_a, hub_b = pair.hub(pair.a, ""), pair.hub(pair.b, "")
    sub = hub_b.subscribe(0.0, LOW)
    _wait_for_floors(pair.a, "")
    _publish(hub_a, ("before", 0.5, LOW))
    assert _keys(sub, 1) == ["before"]
    with psycopg.connect(pg_url, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'crm-alerts-replica-b'"
        ).fetchall()
    assert killed == [(True,)]
    # Alerts sent while B is away are lost (NOTIFY keeps nothing): keep sending until one
    # arrives through B's new connection.
    for i in range(200):
        _publish(hub_a, (f"after-{i}", 0.5, LOW))
        alert = sub.take(timeout=0.1)
        if alert is not None:
            assert alert.request_key.startswith("after-")
            break
    else:
        raise AssertionError("B's listener never came back")

"""Churn alerts across real replicas: a PredictChurn on one `python -m server` reaches
WatchChurnAlerts on another sharing the PostgreSQL database, in order, filtered per watcher,
and never twice on the replica that raised it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc

from crm.v1 import churn_pb2, churn_pb2_grpc, common_pb2
from tests.fleet.conftest import StartFleet
from tests.helpers import sample, scrape
from tests.serverproc import RunningServer
from tests.serving.helpers import snapshot

LOW = churn_pb2.RISK_LEVEL_LOW


class Watcher:
    """A WatchChurnAlerts stream read on its own thread; tests wait on what it received."""

    def __init__(self, replica: RunningServer, min_probability: float = 0.0) -> None:
        request = churn_pb2.WatchChurnAlertsRequest(
            min_probability=min_probability, min_risk_level=LOW
        )
        self.stream = churn_pb2_grpc.ChurnServiceStub(replica.channel).WatchChurnAlerts(
            request, timeout=180
        )
        self.keys: list[str] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for message in self.stream:
                with self._cond:
                    self.keys.append(message.alert.request_key)
                    self._cond.notify_all()
        except grpc.RpcError:
            pass  # cancelled at the end of the test

    def wait(self, done: Callable[[list[str]], bool], timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: done(self.keys), timeout)

    def main_keys(self) -> list[str]:
        """What arrived after the warm-up."""
        with self._cond:
            return [k for k in self.keys if not k.startswith("warm-")]

    def close(self) -> None:
        self.stream.cancel()
        self._thread.join(10)


def _score(replica: RunningServer, *customers: tuple[str, str]) -> churn_pb2.PredictChurnResponse:
    request = churn_pb2.PredictChurnRequest(
        customers=[common_pb2.CustomerInput(customer_id=c, request_key=k) for c, k in customers]
    )
    return churn_pb2_grpc.ChurnServiceStub(replica.channel).PredictChurn(request, timeout=10)


def test_an_alert_raised_on_one_replica_reaches_watchers_on_the_other(
    start_fleet: StartFleet, trained_artifacts: Path
) -> None:
    a, b = start_fleet(2, artifacts=trained_artifacts)
    ids = [str(i) for i in snapshot(trained_artifacts)[0][:200]]
    scored = _score(a, *((c, c) for c in ids)).predictions
    low = min(scored, key=lambda p: p.probability)
    high = max(scored, key=lambda p: p.probability)
    assert low.probability < high.probability
    everything_b = Watcher(b)
    picky_b = Watcher(b, (low.probability + high.probability) / 2)
    local_a = Watcher(a)
    watchers = (everything_b, picky_b, local_a)
    try:
        # Watchers subscribe asynchronously, and A learns of B's through the database: score on
        # A until every watcher has seen one (the alert that passes the picky threshold).
        for i in range(200):
            _score(a, (high.customer_id, f"warm-{i}"))
            if all(w.wait(bool, 0.1) for w in watchers):
                break
        assert all(w.keys for w in watchers), "a watcher never received the warm-up alert"

        _score(a, (low.customer_id, "below"))  # under the picky watcher's threshold
        _score(a, (high.customer_id, "above"))
        main = [f"main-{i:03d}" for i in range(100)]
        for start in range(0, len(main), 10):
            _score(a, *((ids[i], main[i]) for i in range(start, start + 10)))
        expected = ["below", "above", *main]
        assert everything_b.wait(lambda keys: keys[-1:] == main[-1:], 30), everything_b.keys[-5:]
        assert everything_b.main_keys() == expected  # every one, in A's order
        assert picky_b.wait(lambda keys: "above" in keys, 30)
        assert picky_b.main_keys()[0] == "above"  # "below" was published first, and skipped

        # B's alert is committed after A's last one (B received that first), so A's listener
        # sees A's own notifications before it: had A delivered them again, they would show.
        _score(b, (high.customer_id, "from-b"))
        assert local_a.wait(lambda keys: "from-b" in keys, 30)
        assert local_a.main_keys() == [*expected, "from-b"]

        # B counts what it received before delivering it; A counts what it sent once the NOTIFY
        # committed, which B may see first: no event marks that, so A's count is polled.
        received = sample(scrape(b.metrics_url), "crm_alerts_relayed_total", direction="received")
        assert received >= len(expected)
        deadline = time.monotonic() + 10
        while sample(scrape(a.metrics_url), "crm_alerts_relayed_total", direction="sent") < len(
            expected
        ):
            assert time.monotonic() < deadline, "A's sent alerts were not counted"
            time.sleep(0.05)
    finally:
        for watcher in watchers:
            watcher.close()

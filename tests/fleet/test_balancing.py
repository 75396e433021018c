"""A client given several replicas spreads calls (not just connections) over them round robin,
and keeps succeeding while one of them is killed."""

from __future__ import annotations

import re
import threading

import pytest
import requests

from clients.client import CrmClient
from clients.targets import balanced_target
from tests.fleet.conftest import StartFleet
from tests.serverproc import RunningServer


def handled(replica: RunningServer, method: str) -> float:
    """Calls of `method` the replica finished, from its own /metrics."""
    text = requests.get(replica.metrics_url, timeout=10).text
    pattern = rf'^grpc_server_handled_total\{{[^}}]*grpc_method="{method}"[^}}]*\}} (\S+)$'
    return sum(float(m) for m in re.findall(pattern, text, re.MULTILINE))


def test_targets_naming_several_replicas_balance() -> None:
    assert balanced_target("127.0.0.1:1,127.0.0.2:2") == ("ipv4:127.0.0.1:1,127.0.0.2:2", True)
    assert balanced_target("localhost:7, localhost:8")[0].startswith(("ipv4:", "ipv6:"))
    assert balanced_target("dns:///crm.internal:50051") == ("dns:///crm.internal:50051", True)
    assert balanced_target("localhost:50051") == ("localhost:50051", False)
    with pytest.raises(ValueError, match="host:port"):
        balanced_target("127.0.0.1:1,b")
    with pytest.raises(ValueError, match="cannot resolve"):
        balanced_target("127.0.0.1:1,no-such-host.invalid:2")


def test_calls_spread_over_replicas_and_survive_losing_one(start_fleet: StartFleet) -> None:
    first, second = start_fleet(2)
    target = f"{first.target},{second.target}"
    with CrmClient(target, timeout=10) as client:
        client.integrity.append_leaves([b"seed"], "rr")
        for _ in range(40):
            assert client.integrity.tree_head("rr").tree_size == 1
        counts = [handled(r, "GetTreeHead") for r in (first, second)]
        assert sum(counts) == 40 and min(counts) >= 10, counts

        # Calls keep going from several threads while the first replica is killed.
        failures: list[BaseException] = []
        done = [0]
        lock = threading.Lock()
        killed = threading.Event()
        after_kill = threading.Event()

        def reader() -> None:
            while not after_kill.is_set():
                try:
                    client.integrity.tree_head("rr")
                except BaseException as err:
                    failures.append(err)
                    return
                with lock:
                    done[0] += 1
                    if done[0] == 100:
                        first.kill()
                        killed.set()
                    if done[0] >= 400:
                        after_kill.set()

        threads = [threading.Thread(target=reader) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert killed.is_set() and after_kill.is_set()
        assert not failures, failures
        assert handled(second, "GetTreeHead") >= counts[1] + 300 - 100

"""SIGTERM under load: every call that reached the server finishes OK, later ones get
UNAVAILABLE, none is CANCELLED (`server.drain`)."""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from crm.v1 import churn_pb2, churn_pb2_grpc
from tests.serverproc import RunningServer
from tests.serving.test_scoring import _snapshot

CLIENTS = 16
CALLS_BEFORE_SIGNAL = 20 * CLIENTS  # load is well under way when SIGTERM arrives


@dataclass(frozen=True)
class Outcome:
    started: float  # monotonic, client side
    ended: float
    code: grpc.StatusCode
    details: str


def _server_pids(server: RunningServer) -> set[int]:
    (line,) = [r for r in server.log_records() if r.get("msg") == "listening"]
    return {server.proc.pid, *(int(pid) for pid in line.get("workers", {}).values())}


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_under_load_finishes_every_call_and_cancels_none(
    start_server, trained_artifacts: Path, workers: int
) -> None:
    server = start_server(
        trained_artifacts, extra_args=["--workers", str(workers), "--grace-seconds", "10"]
    )
    pids = _server_pids(server)
    assert len(pids) == workers + (workers > 1)
    ids = _snapshot(trained_artifacts)[0][:4].tolist()
    request = churn_pb2.PredictChurnRequest(customers=[{"customer_id": c} for c in ids])
    outcomes: list[Outcome] = []
    lock = threading.Condition()
    stop = threading.Event()
    warm = threading.Barrier(CLIENTS + 1)

    def client() -> None:
        # A channel each: with --workers, SO_REUSEPORT spreads connections over the workers.
        with grpc.insecure_channel(server.target) as channel:
            stub = churn_pb2_grpc.ChurnServiceStub(channel)
            stub.PredictChurn(request, timeout=30)  # connected and served before the load
            warm.wait()
            while not stop.is_set():
                started = time.monotonic()
                try:
                    stub.PredictChurn(request, timeout=30)
                    code, details = grpc.StatusCode.OK, ""
                except grpc.RpcError as err:
                    code, details = err.code(), err.details() or ""
                with lock:
                    outcomes.append(Outcome(started, time.monotonic(), code, details))
                    lock.notify_all()

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        warm.wait(timeout=60)
        with lock:
            assert lock.wait_for(lambda: len(outcomes) >= CALLS_BEFORE_SIGNAL, timeout=60)
        signalled = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(timeout=30)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert code == 0, server.logs()[-3000:]
    cancelled = [o for o in outcomes if o.code is grpc.StatusCode.CANCELLED]
    assert not cancelled, f"{len(cancelled)} CANCELLED, e.g. {cancelled[:3]}"
    failed = [
        o for o in outcomes if o.code not in (grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE)
    ]
    assert not failed, failed[:5]
    before = [o for o in outcomes if o.started < signalled]
    lost = [o for o in before if o.code is not grpc.StatusCode.OK]
    assert not lost, f"{len(lost)} calls sent before SIGTERM failed, e.g. {lost[:3]}"
    # The signal came mid-load: calls were in flight across it, and finished OK.
    assert any(o.ended > signalled for o in before)
    # Calls after the drain began were refused, not served on (clients retry UNAVAILABLE).
    assert any(o.code is grpc.StatusCode.UNAVAILABLE for o in outcomes)
    assert all(_gone(pid) for pid in pids), "a server process outlived the supervisor"

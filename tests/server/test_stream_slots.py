"""Open streams never take every handler thread, so unary calls always find one.

Before, as many alert or health watchers as handler threads left none for unary calls: a health
Check timed out while the watchers stayed open. Streams that hold a thread are now bounded;
health Watch runs in grpc's callback form and holds none.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from crm.v1 import churn_pb2, churn_pb2_grpc, integrity_pb2, integrity_pb2_grpc
from tests.helpers import sample, scrape

SERVING = health_pb2.HealthCheckResponse.SERVING


def _quota_subjects(err: grpc.RpcError) -> list[str]:
    status = rpc_status.from_call(err)
    assert status is not None, "RESOURCE_EXHAUSTED without google.rpc details"
    subjects = []
    for detail in status.details:
        failure = error_details_pb2.QuotaFailure()
        assert detail.Unpack(failure)
        subjects.extend(v.subject for v in failure.violations)
    return subjects


def _open_streams(server) -> float:
    return sample(scrape(server.metrics_url), "crm_open_streams")


def _wait_for_open_streams(server, expected: int) -> None:
    deadline = time.monotonic() + 5
    while _open_streams(server) != expected:
        assert time.monotonic() < deadline, f"open streams never reached {expected}"
        time.sleep(0.05)


def _checks_answer(health: health_pb2_grpc.HealthStub) -> None:
    """Many concurrent unary calls all answer."""
    with ThreadPoolExecutor(8) as pool:
        checks = list(
            pool.map(lambda _: health.Check(health_pb2.HealthCheckRequest(), timeout=5), range(40))
        )
    assert {c.status for c in checks} == {SERVING}


class _Upload:
    """A HashDataset upload that sends one chunk and then holds its stream (and the server's
    handler thread) open until released."""

    def __init__(self, stub: integrity_pb2_grpc.IntegrityServiceStub) -> None:
        self.release = threading.Event()
        self.future = stub.HashDataset.future(self._chunks(), timeout=30)

    def _chunks(self) -> Iterator[integrity_pb2.HashDatasetRequest]:
        yield integrity_pb2.HashDatasetRequest(chunk=b"Invoice,StockCode")
        self.release.wait(20)

    def finish(self) -> None:
        self.release.set()
        # The chunk is no dataset, so the upload may fail as input; it was served, not refused.
        error = self.future.exception(timeout=10)
        assert error is None or error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED


def test_streams_beyond_the_bound_are_refused_while_unary_calls_answer(start_server) -> None:
    server = start_server(extra_args=["--threads", "4", "--max-open-streams", "2"])
    health = health_pb2_grpc.HealthStub(server.channel)
    integrity = integrity_pb2_grpc.IntegrityServiceStub(server.channel)
    uploads = [_Upload(integrity) for _ in range(2)]
    _wait_for_open_streams(server, 2)

    alerts = churn_pb2_grpc.ChurnServiceStub(server.channel).WatchChurnAlerts(
        churn_pb2.WatchChurnAlertsRequest(), timeout=5
    )
    with pytest.raises(grpc.RpcError) as refused:
        next(alerts)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "--max-open-streams" in refused.value.details()
    assert _quota_subjects(refused.value) == ["streams"]
    with pytest.raises(grpc.RpcError) as refused_upload:
        integrity.HashDataset(iter([integrity_pb2.HashDatasetRequest(chunk=b"x")]), timeout=5)
    assert refused_upload.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    # The two threads the streams leave serve unary calls, many at once.
    _checks_answer(health)
    samples = scrape(server.metrics_url)
    assert sample(samples, "crm_open_streams") == 2
    refusals = sample(
        samples, "grpc_server_handled_total", grpc_method="WatchChurnAlerts",
        grpc_code="RESOURCE_EXHAUSTED",
    )  # fmt: skip
    assert refusals == 1

    # A stream that ends gives its slot back: a new one is served.
    uploads[0].finish()
    _wait_for_open_streams(server, 1)
    uploads[0] = _Upload(integrity)
    _wait_for_open_streams(server, 2)
    for upload in uploads:
        upload.finish()
    _wait_for_open_streams(server, 0)


def test_health_watchers_hold_no_handler_thread(start_server) -> None:
    """Client-side health checking opens a Watch per connection: many more than threads."""
    server = start_server(extra_args=["--threads", "4", "--max-open-streams", "2"])
    health = health_pb2_grpc.HealthStub(server.channel)
    watches = [health.Watch(health_pb2.HealthCheckRequest(), timeout=30) for _ in range(12)]
    assert {next(w).status for w in watches} == {SERVING}
    _checks_answer(health)
    assert _open_streams(server) == 0
    # and a stream that does hold a thread still gets one of the two slots
    upload = _Upload(integrity_pb2_grpc.IntegrityServiceStub(server.channel))
    _wait_for_open_streams(server, 1)
    upload.finish()
    for watch in watches:
        watch.cancel()
    deadline = time.monotonic() + 5
    while True:
        cancelled = sample(
            scrape(server.metrics_url), "grpc_server_handled_total", grpc_method="Watch",
            grpc_code="CANCELLED",
        )  # fmt: skip
        if cancelled == 12:
            break
        assert time.monotonic() < deadline, f"{cancelled} of 12 cancelled Watches were counted"
        time.sleep(0.05)

"""Open streams are bounded, so unary calls always find a handler thread.

Before the bound, as many alert or health watchers as handler threads left none for unary
calls: a health Check timed out while the watchers stayed open.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from crm.v1 import churn_pb2, churn_pb2_grpc, integrity_pb2, integrity_pb2_grpc
from tests.server.test_core import sample, scrape

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


def _open_watch(health: health_pb2_grpc.HealthStub) -> grpc.Call:
    """A health Watch that has sent its first status, so it now holds a handler thread."""
    watch = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=60)
    assert next(watch).status == SERVING
    return watch


def test_streams_beyond_the_bound_are_refused_while_unary_calls_answer(start_server) -> None:
    server = start_server(extra_args=["--threads", "4", "--max-open-streams", "2"])
    health = health_pb2_grpc.HealthStub(server.channel)
    watches = [_open_watch(health) for _ in range(2)]

    alerts = churn_pb2_grpc.ChurnServiceStub(server.channel).WatchChurnAlerts(
        churn_pb2.WatchChurnAlertsRequest(), timeout=5
    )
    with pytest.raises(grpc.RpcError) as refused:
        next(alerts)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "--max-open-streams" in refused.value.details()
    assert _quota_subjects(refused.value) == ["streams"]
    with pytest.raises(grpc.RpcError) as refused_upload:  # client streams hold a thread too
        integrity_pb2_grpc.IntegrityServiceStub(server.channel).HashDataset(
            iter([integrity_pb2.HashDatasetRequest(chunk=b"x")]), timeout=5
        )
    assert refused_upload.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    # The two threads the streams leave serve unary calls, many at once.
    with ThreadPoolExecutor(8) as pool:
        checks = list(
            pool.map(lambda _: health.Check(health_pb2.HealthCheckRequest(), timeout=5), range(40))
        )
    assert {c.status for c in checks} == {SERVING}
    samples = scrape(server.metrics_url)
    assert sample(samples, "crm_open_streams") == 2
    refusals = sample(
        samples, "grpc_server_handled_total", grpc_method="WatchChurnAlerts",
        grpc_code="RESOURCE_EXHAUSTED",
    )  # fmt: skip
    assert refusals == 1

    # A stream that ends gives its slot back: a new one is served.
    watches[0].cancel()
    deadline = time.monotonic() + 5
    while True:
        try:
            watches[0] = _open_watch(health)
            break
        except grpc.RpcError as err:
            # The cancelled Watch lets go of its thread a moment after the cancel.
            assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert time.monotonic() < deadline, "the cancelled stream never gave its slot back"
            time.sleep(0.05)
    for watch in watches:
        watch.cancel()
    deadline = time.monotonic() + 5
    while sample(scrape(server.metrics_url), "crm_open_streams") != 0:
        assert time.monotonic() < deadline, "slots of cancelled streams were not given back"
        time.sleep(0.05)

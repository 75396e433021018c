"""grpc.health.v1: `List` answers every service's status, and open Watch streams are bounded.

Before, `List` was listed by reflection but answered UNIMPLEMENTED, and every health Watch was
accepted (1,200 held 31 MB, with no limit): Watch holds no handler thread, so the bound on open
streams never applied to it.
"""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from server.transport.health import SERVICE_MODELS
from tests.factories import make_onnx_artifact

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def test_list_answers_every_service_as_check_does(start_server, tmp_path: Path) -> None:
    make_onnx_artifact(tmp_path, "churn")
    server = start_server(tmp_path)
    stub = health_pb2_grpc.HealthStub(server.channel)
    listed = stub.List(health_pb2.HealthListRequest(), timeout=5).statuses
    assert set(listed) == {"", *SERVICE_MODELS}
    for service, response in listed.items():
        check = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert response.status == check.status, service
    assert listed["crm.v1.ChurnService"].status == SERVING
    assert listed["crm.v1.SpendService"].status == NOT_SERVING


def _refused_as_quota(watch: grpc.Future) -> list[str]:
    """The subjects of the QuotaFailure a refused Watch carries."""
    with pytest.raises(grpc.RpcError) as err:
        next(watch)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err.value
    status = rpc_status.from_call(err.value)
    assert status is not None, "RESOURCE_EXHAUSTED without google.rpc details"
    subjects = []
    for detail in status.details:
        failure = error_details_pb2.QuotaFailure()
        assert detail.Unpack(failure)
        subjects += [v.subject for v in failure.violations]
    return subjects


def test_open_health_watches_are_bounded(start_server) -> None:
    # Set through the environment: a server without the bound starts too, and accepts all six.
    server = start_server(env={"CRM_MAX_HEALTH_WATCHES": "5"})
    stub = health_pb2_grpc.HealthStub(server.channel)
    request = health_pb2.HealthCheckRequest()
    watches = [stub.Watch(request, timeout=30) for _ in range(5)]
    assert [next(w).status for w in watches] == [SERVING] * 5
    assert _refused_as_quota(stub.Watch(request, timeout=30)) == ["health_watches"]
    # unary calls still answer, and a refused Watch held nothing
    assert stub.Check(request, timeout=5).status == SERVING
    assert _refused_as_quota(stub.Watch(request, timeout=30)) == ["health_watches"]
    # a watcher that leaves frees its place (the server learns of the cancel a moment later)
    watches.pop().cancel()
    deadline = time.monotonic() + 10
    while True:
        again = stub.Watch(request, timeout=30)
        try:
            assert next(again).status == SERVING
            break
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err
            assert time.monotonic() < deadline, "a cancelled Watch never freed its place"
    assert _refused_as_quota(stub.Watch(request, timeout=30)) == ["health_watches"]
    for watch in [*watches, again]:
        watch.cancel()

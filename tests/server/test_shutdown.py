"""Graceful shutdown: NOT_SERVING, new calls refused, in-flight calls finish, exit 0."""

from __future__ import annotations

import signal
import threading
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from server.transport.interceptor import DRAINING_MESSAGE


def test_sigterm_drains_in_flight_calls_and_exits_zero(start_server) -> None:
    server = start_server(extra_args=["--grace-seconds", "10"])
    health = health_pb2_grpc.HealthStub(server.channel)
    watch = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=30)
    assert next(watch).status == health_pb2.HealthCheckResponse.SERVING

    # An in-flight bidi call: its second request is sent only after SIGTERM.
    signalled = threading.Event()

    def requests():
        yield reflection_pb2.ServerReflectionRequest(list_services="")
        signalled.wait(10)
        time.sleep(0.5)
        yield reflection_pb2.ServerReflectionRequest(file_containing_symbol="crm.v1.ModelService")

    stream = reflection_pb2_grpc.ServerReflectionStub(server.channel).ServerReflectionInfo(
        requests(), timeout=30
    )
    first = next(stream)
    assert first.list_services_response.service
    server.proc.send_signal(signal.SIGTERM)
    signalled.set()
    # Health watchers hear NOT_SERVING at once, then their stream ends: an open Watch would
    # otherwise hold the drain for the whole grace period (checked at the end).
    assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
    assert list(watch) == []
    assert watch.code() == grpc.StatusCode.OK
    # New calls are refused (once the drain's settling time for calls already queued in gRPC
    # core is over, `server.transport.drain`) ...
    refused = None
    deadline = time.monotonic() + 3
    while refused is None and time.monotonic() < deadline:
        try:
            health.Check(health_pb2.HealthCheckRequest(), timeout=2)
            time.sleep(0.02)
        except grpc.RpcError as err:
            refused = err
    assert refused is not None, "new calls were still served after SIGTERM"
    # UNAVAILABLE, which clients retry; never CANCELLED (what gRPC core's shutdown gave).
    assert refused.code() == grpc.StatusCode.UNAVAILABLE
    assert refused.details() == DRAINING_MESSAGE
    # ... while the in-flight call completes normally.
    second = next(stream)
    assert second.file_descriptor_response.file_descriptor_proto
    assert list(stream) == []
    assert stream.code() == grpc.StatusCode.OK
    finished = time.monotonic()
    assert server.proc.wait(timeout=20) == 0
    assert time.monotonic() - finished < 5, "drain waited for the grace period, not the calls"
    assert '"msg": "stopped"' in server.logs()

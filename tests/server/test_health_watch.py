"""Health Watch streams that come and go concurrently never wedge the server.

grpc's health servicer sent to watchers while holding its lock, and grpc's poller thread takes
that lock to run a cancelled Watch's close callback: with four clients opening and cancelling
watches, the server stopped answering every call (found by `make fuzz`).
"""

from __future__ import annotations

import threading

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conftest import StartServer

CLIENTS = 4
WATCHES = 100  # per client


def test_concurrent_watches_and_cancels_leave_the_server_answering(
    start_server: StartServer,
) -> None:
    server = start_server()
    stub = health_pb2_grpc.HealthStub(server.channel)
    services = ["", "unknown", "crm.v1.ChurnService", "crm.v1.ModelService"]
    timed_out = threading.Event()
    statuses: list[int] = []

    def client(k: int) -> None:
        for i in range(WATCHES):
            if timed_out.is_set():
                return
            request = health_pb2.HealthCheckRequest(service=services[(i + k) % len(services)])
            stream = stub.Watch(request, timeout=2.0)
            try:
                for response in stream:
                    statuses.append(response.status)
                    stream.cancel()  # the first status is enough
                    break
            except grpc.RpcError as err:
                if err.code() is grpc.StatusCode.DEADLINE_EXCEEDED:  # no first status: wedged
                    timed_out.set()
                    return

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not timed_out.is_set(), "a Watch got no first status within 2 s"
    assert len(statuses) == CLIENTS * WATCHES
    assert set(statuses) == {
        health_pb2.HealthCheckResponse.SERVING,
        health_pb2.HealthCheckResponse.NOT_SERVING,
        health_pb2.HealthCheckResponse.SERVICE_UNKNOWN,
    }
    reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING

"""The handler pool gRPC runs calls on: every call runs, every done callback fires once, and
gRPC's count of calls in flight (--max-concurrent-rpcs) comes back down as calls end."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from crm.v1 import integrity_pb2, integrity_pb2_grpc
from server.transport.handler_pool import HandlerPool


def test_every_call_runs_once_and_its_callbacks_fire_once() -> None:
    pool = HandlerPool(3)
    gate = threading.Event()
    ran: list[int] = []
    fired: list[int] = []
    calls = []
    for i in range(20):
        call = pool.submit(lambda i=i: (gate.wait(10), ran.append(i)))
        call.add_done_callback(lambda _c, i=i: fired.append(i))
        calls.append(call)
    assert not any(c.done() for c in calls)  # all held at the gate: none finished early
    gate.set()
    pool.shutdown(wait=True)  # shutdown queues after the calls: they all run first
    assert sorted(ran) == list(range(20))
    assert sorted(fired) == list(range(20))
    late: list[object] = []
    calls[0].add_done_callback(late.append)  # added after the call ended: runs at once
    assert late == [calls[0]]
    assert len(pool._threads) == 3


def test_a_raising_call_still_ends_and_the_thread_keeps_serving() -> None:
    pool = HandlerPool(1)
    ended = threading.Event()
    pool.submit(lambda: 1 / 0).add_done_callback(lambda _c: ended.set())
    assert ended.wait(5)
    after = threading.Event()
    pool.submit(after.set)
    assert after.wait(5)
    pool.shutdown()
    with pytest.raises(RuntimeError):
        pool.submit(after.set)


class _HeldUpload:
    """A HashDataset stream that sends one chunk, then holds its call open until released."""

    def __init__(self, stub: integrity_pb2_grpc.IntegrityServiceStub) -> None:
        self.sent = threading.Event()
        self.release = threading.Event()
        self.future = stub.HashDataset.future(self._chunks(), timeout=30)

    def _chunks(self) -> Iterator[integrity_pb2.HashDatasetRequest]:
        yield integrity_pb2.HashDatasetRequest(chunk=b"Invoice,StockCode")
        self.sent.set()
        self.release.wait(20)

    def finish(self) -> None:
        self.release.set()
        self.future.exception(timeout=10)  # served (the chunk is no dataset): done either way


def test_calls_in_flight_are_counted_down_as_they_end(start_server) -> None:
    server = start_server(extra_args=["--max-concurrent-rpcs", "2"])
    health = health_pb2_grpc.HealthStub(server.channel)
    check = health_pb2.HealthCheckRequest()
    # Far more calls than the limit, one after another: each must have been counted out.
    for _ in range(50):
        health.Check(check, timeout=5)
    uploads = [_HeldUpload(integrity_pb2_grpc.IntegrityServiceStub(server.channel))]
    uploads.append(_HeldUpload(integrity_pb2_grpc.IntegrityServiceStub(server.channel)))
    for upload in uploads:
        assert upload.sent.wait(10)
    refused = None
    for _ in range(50):  # the uploads are open once the server reads them; until then, retry
        try:
            health.Check(check, timeout=5)
        except grpc.RpcError as err:
            refused = err
            break
    assert refused is not None and refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    for upload in uploads:
        upload.finish()
    # A client sees its status a moment before the server's thread counts the call out.
    answered = 0
    for _ in range(200):
        try:
            health.Check(check, timeout=5)
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            continue
        answered += 1
        if answered == 10:
            break
    assert answered == 10, "the ended uploads were never counted out"

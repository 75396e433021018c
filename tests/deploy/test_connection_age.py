"""--max-connection-age-seconds: the server closes a client's connection after the age (GOAWAY),
the channel reconnects, and calls keep succeeding, so clients rebalance after a scale-up."""

from __future__ import annotations

import threading

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.config import ServerConfig
from server.transport.app import _connection_age_options

SERVING = health_pb2.HealthCheckResponse.SERVING


def test_options_follow_config() -> None:
    config = ServerConfig(max_connection_age_seconds=2.5, grace_seconds=4)
    assert _connection_age_options(config) == [
        ("grpc.max_connection_age_ms", 2500),
        ("grpc.max_connection_age_grace_ms", 4000),
    ]
    assert _connection_age_options(ServerConfig(max_connection_age_seconds=0)) == []
    assert ServerConfig().max_connection_age_seconds == 300


def test_connection_closed_after_age_and_calls_go_on(start_server) -> None:
    server = start_server(extra_args=["--max-connection-age-seconds", "1"])
    left_ready = threading.Event()
    seen: list[grpc.ChannelConnectivity] = []

    def on_state(state: grpc.ChannelConnectivity) -> None:
        seen.append(state)
        if grpc.ChannelConnectivity.READY in seen and state != grpc.ChannelConnectivity.READY:
            left_ready.set()

    with grpc.insecure_channel(server.target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        assert stub.Check(health_pb2.HealthCheckRequest(), timeout=10).status == SERVING
        channel.subscribe(on_state)
        # The server's GOAWAY after ~1 s (+-10% jitter) takes the channel out of READY.
        assert left_ready.wait(30), f"connection never closed; states seen: {seen}"
        for _ in range(3):
            reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert reply.status == SERVING
        channel.unsubscribe(on_state)


def test_zero_keeps_the_connection(start_server) -> None:
    """Age 0: no option is set (gRPC's default, unlimited); the server starts and answers."""
    server = start_server(extra_args=["--max-connection-age-seconds", "0"])
    with grpc.insecure_channel(server.target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        assert stub.Check(health_pb2.HealthCheckRequest(), timeout=10).status == SERVING

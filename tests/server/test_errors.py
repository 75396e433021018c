"""Error mapping of the interceptor on a real in-process gRPC server with test handlers."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from clients.errors import CrmError
from server.errors import FieldViolation, InvalidArgument, NotFound
from server.metrics import ServerMetrics
from server.transport.interceptor import serving_interceptor
from server.transport.stream_slots import StreamSlots

SECRET = "/etc/secret/path"


def _raise_unexpected(request: bytes, context: grpc.ServicerContext) -> bytes:
    raise ValueError(f"bug near {SECRET}")


def _raise_invalid(request: bytes, context: grpc.ServicerContext) -> bytes:
    raise InvalidArgument(
        [
            FieldViolation("customers[3].features.recency_days", "must be >= 0"),
            FieldViolation("customers[4].customer_id", "required"),
        ]
    )


def _stream_then_fail(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    yield b"one"
    raise KeyError(SECRET)


def _stream_not_found(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
    yield from requests
    raise NotFound("no such log", "log", "x")


@pytest.fixture
def channel() -> Iterator[tuple[grpc.Channel, ServerMetrics]]:
    metrics = ServerMetrics()
    server = grpc.server(
        ThreadPoolExecutor(4),
        interceptors=[serving_interceptor(metrics, StreamSlots(2, 4, metrics.open_streams))],
    )
    identity = {"request_deserializer": None, "response_serializer": None}
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "test.Svc",
                {
                    "Unexpected": grpc.unary_unary_rpc_method_handler(
                        _raise_unexpected, **identity
                    ),
                    "Invalid": grpc.unary_unary_rpc_method_handler(_raise_invalid, **identity),
                    "StreamFail": grpc.unary_stream_rpc_method_handler(
                        _stream_then_fail, **identity
                    ),
                    "BidiNotFound": grpc.stream_stream_rpc_method_handler(
                        _stream_not_found, **identity
                    ),
                },
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    ch = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield ch, metrics
    ch.close()
    server.stop(None)


def _handled(metrics: ServerMetrics, method: str, code: str) -> float:
    value = metrics.registry.get_sample_value(
        "grpc_server_handled_total",
        {"grpc_type": "unary" if method in ("Unexpected", "Invalid") else ("server_stream" if method == "StreamFail" else "bidi_stream"),
         "grpc_service": "test.Svc", "grpc_method": method, "grpc_code": code},
    )  # fmt: skip
    return value or 0.0


def test_unexpected_exception_is_internal_without_leaking(channel, caplog) -> None:
    ch, metrics = channel
    with caplog.at_level(logging.ERROR, logger="server.rpc"), pytest.raises(grpc.RpcError) as err:
        ch.unary_unary("/test.Svc/Unexpected")(b"x", timeout=5)
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert SECRET not in (err.value.details() or "")
    assert "Traceback" not in (err.value.details() or "")
    assert any(r.exc_info and SECRET in str(r.exc_info[1]) for r in caplog.records)
    assert _handled(metrics, "Unexpected", "INTERNAL") == 1


def test_invalid_argument_carries_field_violations(channel) -> None:
    ch, metrics = channel
    with pytest.raises(grpc.RpcError) as err:
        ch.unary_unary("/test.Svc/Invalid")(b"x", timeout=5)
    decoded = CrmError.from_rpc_error(err.value)
    assert decoded.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in decoded.violations] == [
        "customers[3].features.recency_days",
        "customers[4].customer_id",
    ]
    assert _handled(metrics, "Invalid", "INVALID_ARGUMENT") == 1


def test_streaming_failures_map_too(channel) -> None:
    ch, metrics = channel
    stream = ch.unary_stream("/test.Svc/StreamFail")(b"x", timeout=5)
    assert next(stream) == b"one"
    with pytest.raises(grpc.RpcError) as err:
        next(stream)
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert SECRET not in (err.value.details() or "")
    bidi = ch.stream_stream("/test.Svc/BidiNotFound")(iter([b"a", b"b"]), timeout=5)
    assert [next(bidi), next(bidi)] == [b"a", b"b"]
    with pytest.raises(grpc.RpcError) as err:
        next(bidi)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert _handled(metrics, "StreamFail", "INTERNAL") == 1
    assert _handled(metrics, "BidiNotFound", "NOT_FOUND") == 1
    received = metrics.registry.get_sample_value(
        "grpc_server_msg_received_total",
        {"grpc_type": "bidi_stream", "grpc_service": "test.Svc", "grpc_method": "BidiNotFound"},
    )
    assert received == 2

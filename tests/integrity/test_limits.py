"""Integrity resources are bounded: logs per data dir, bytes per leaf and per append.

Before, 3,000 logs were created in 1.7 s with no quota and a 60 MiB leaf was accepted (one no
GetLeaves response could ever return). The bounds are set through the environment here, so a
server without them starts too and shows the old behaviour.
"""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from clients.integrity import IntegrityClient
from crm.v1 import common_pb2, integrity_pb2, integrity_pb2_grpc
from tests.conftest import StartServer

KIB = 1024


def _failure(call, request) -> grpc.RpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as err:
        call(request, timeout=30)
    return err.value


def _details(err: grpc.RpcError, message_type: type) -> list:
    status = rpc_status.from_call(err)
    assert status is not None, f"{err.code()} without google.rpc details"
    found = []
    for detail in status.details:
        message = message_type()
        if detail.Unpack(message):
            found.append(message)
    return found


def _bad_fields(err: grpc.RpcError) -> list[str]:
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err
    return [
        v.field for bad in _details(err, error_details_pb2.BadRequest) for v in bad.field_violations
    ]


def test_logs_per_data_dir_are_bounded(start_server: StartServer) -> None:
    server = start_server(env={"CRM_MAX_INTEGRITY_LOGS": "3"})
    stub = integrity_pb2_grpc.IntegrityServiceStub(server.channel)
    for name in ("a", "b", "c"):
        stub.AppendLeaves(integrity_pb2.AppendLeavesRequest(log=name, leaves=[b"x"]), timeout=10)
    err = _failure(stub.AppendLeaves, integrity_pb2.AppendLeavesRequest(log="d", leaves=[b"x"]))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err
    (quota,) = _details(err, error_details_pb2.QuotaFailure)
    assert [v.subject for v in quota.violations] == ["integrity_logs"]
    err = _failure(
        stub.AppendTransactions,
        integrity_pb2.AppendTransactionsRequest(log="e", transactions=[_line("x")]),
    )
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err
    # nothing was written for the refused logs; the existing ones still take appends
    err = _failure(stub.GetTreeHead, integrity_pb2.GetTreeHeadRequest(log="d"))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    head = stub.AppendLeaves(
        integrity_pb2.AppendLeavesRequest(log="a", leaves=[b"y"]), timeout=10
    ).tree_head
    assert head.tree_size == 2


def _line(description: str) -> common_pb2.TransactionLine:
    when = timestamp_pb2.Timestamp()
    when.FromDatetime(datetime(2010, 12, 1, 8, 26, tzinfo=UTC))
    return common_pb2.TransactionLine(
        invoice="536365", stock_code="85123A", description=description, quantity=6,
        invoice_date=when, price=2.55, customer_id="17850", country="United Kingdom",
    )  # fmt: skip


def test_bytes_per_leaf_and_per_append_are_bounded(start_server: StartServer) -> None:
    server = start_server(env={"CRM_MAX_LEAF_KIB": "4", "CRM_MAX_APPEND_MB": "1"})
    client = IntegrityClient(server.channel)
    stub = integrity_pb2_grpc.IntegrityServiceStub(server.channel)
    at_most = b"a" * (4 * KIB)
    err = _failure(
        stub.AppendLeaves,
        integrity_pb2.AppendLeavesRequest(
            log="big", leaves=[at_most, at_most + b"!", b"", at_most + b"!"]
        ),
    )
    assert _bad_fields(err) == ["leaves[1]", "leaves[3]"]
    # Every text field is within its text limit; together they pass the 4 KiB leaf bound.
    long_line = _line("x" * 1024)
    long_line.stock_code, long_line.customer_id, long_line.country = (
        "s" * 1024,
        "c" * 1024,
        "k" * 1024,
    )
    err = _failure(
        stub.AppendTransactions,
        integrity_pb2.AppendTransactionsRequest(
            log="big", transactions=[_line("short"), long_line, _line("x" * 1000)]
        ),
    )
    assert _bad_fields(err) == ["transactions[1]"]
    # 257 leaves of 4 KiB are just over 1 MiB: the whole append is refused, naming the field
    err = _failure(
        stub.AppendLeaves, integrity_pb2.AppendLeavesRequest(log="big", leaves=[at_most] * 257)
    )
    assert _bad_fields(err) == ["leaves"]
    err = _failure(stub.GetTreeHead, integrity_pb2.GetTreeHeadRequest(log="big"))
    assert err.code() == grpc.StatusCode.NOT_FOUND  # refused appends wrote nothing
    appended = client.append_leaves([at_most] * 256, "big")
    assert appended.tree_head.tree_size == 256
    assert [leaf.data for leaf in client.leaves(254, 256, "big")] == [at_most] * 2


def test_default_leaf_bound_refuses_what_was_accepted(start_server: StartServer) -> None:
    """A 2 MiB leaf went in (up to the 64 MiB message); by default a leaf is at most 1 MiB."""
    stub = integrity_pb2_grpc.IntegrityServiceStub(start_server().channel)
    err = _failure(
        stub.AppendLeaves, integrity_pb2.AppendLeavesRequest(leaves=[b"z" * (2 * KIB * KIB)])
    )
    assert _bad_fields(err) == ["leaves[0]"]
    stub.AppendLeaves(integrity_pb2.AppendLeavesRequest(leaves=[b"z" * (KIB * KIB)]), timeout=30)

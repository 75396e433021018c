"""The audit trail of a real server: one JSON line per write, admin call and refusal, with
caller, tenant, method, resource and outcome; reads are not in it; no token ever is."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from crm.v1 import (
    campaign_pb2,
    campaign_pb2_grpc,
    integrity_pb2,
    integrity_pb2_grpc,
    model_pb2,
    model_pb2_grpc,
)
from tests.security.auth_fixtures import (
    bearer,
    hs256,
    keys,  # noqa: F401  (a fixture)
    serve,
)
from tests.serverproc import RunningServer

FIELDS = {"time", "caller", "tenant", "method", "resource", "outcome"}


@pytest.fixture(scope="module")
def audit_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audit") / "audit.jsonl"


@pytest.fixture(scope="module")
def audited_server(
    keys,  # noqa: F811
    audit_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningServer]:
    args = [*keys.server_args(), "--audit-log", str(audit_file), "--rate-limits", "admin=1/m:1"]
    yield from serve(tmp_path_factory, args)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _code(call) -> str:
    try:
        call()
    except grpc.RpcError as err:
        return err.code().name
    return "OK"


def test_one_line_per_write_and_refusal_and_no_token(
    audited_server: RunningServer,
    audit_file: Path,
    keys,  # noqa: F811
) -> None:
    channel = audited_server.channel
    writer = hs256(keys, "integrity:write campaign:write score", sub="writer", tenant="acme")
    admin = hs256(keys, "admin", sub="root")
    reader = hs256(keys, "score integrity:read", sub="reader", tenant="acme")
    integrity = integrity_pb2_grpc.IntegrityServiceStub(channel)
    campaigns = campaign_pb2_grpc.CampaignServiceStub(channel)
    models = model_pb2_grpc.ModelServiceStub(channel)
    expected = [
        (
            lambda: integrity.AppendLeaves(
                integrity_pb2.AppendLeavesRequest(log="sales-2025", leaves=[b"a", b"b"]),
                metadata=bearer(writer), timeout=10,
            ),
            ("writer", "acme", "/crm.v1.IntegrityService/AppendLeaves", "sales-2025", "OK"),
        ),
        (
            lambda: campaigns.SaveCampaign(
                campaign_pb2.SaveCampaignRequest(name="spring"), metadata=bearer(writer),
                timeout=10,
            ),
            ("writer", "acme", "/crm.v1.CampaignService/SaveCampaign", "spring", None),
        ),
        (
            lambda: models.ReloadModels(
                model_pb2.ReloadModelsRequest(), metadata=bearer(admin), timeout=10
            ),
            ("root", None, "/crm.v1.ModelService/ReloadModels", "", "OK"),
        ),
        (  # the admin rate limit (1 a minute) refuses the second reload
            lambda: models.ReloadModels(
                model_pb2.ReloadModelsRequest(), metadata=bearer(admin), timeout=10
            ),
            ("root", None, "/crm.v1.ModelService/ReloadModels", "", "RESOURCE_EXHAUSTED"),
        ),
        (
            lambda: integrity.AppendLeaves(
                integrity_pb2.AppendLeavesRequest(log="x", leaves=[b"a"]), timeout=10
            ),
            (None, None, "/crm.v1.IntegrityService/AppendLeaves", "", "UNAUTHENTICATED"),
        ),
        (
            lambda: integrity.AppendLeaves(
                integrity_pb2.AppendLeavesRequest(log="x", leaves=[b"a"]),
                metadata=bearer(reader), timeout=10,
            ),
            ("reader", "acme", "/crm.v1.IntegrityService/AppendLeaves", "", "PERMISSION_DENIED"),
        ),
        (  # a refused read is audited too
            lambda: models.ListModels(model_pb2.ListModelsRequest(), timeout=10),
            (None, None, "/crm.v1.ModelService/ListModels", "", "UNAUTHENTICATED"),
        ),
    ]  # fmt: skip
    before = len(_lines(audit_file)) if audit_file.exists() else 0
    codes = [_code(call) for call, _ in expected]
    # reads that pass are not audited
    models.ListModels(model_pb2.ListModelsRequest(), metadata=bearer(reader), timeout=10)
    integrity.GetTreeHead(
        integrity_pb2.GetTreeHeadRequest(log="sales-2025"), metadata=bearer(reader), timeout=10
    )
    lines = _lines(audit_file)[before:]
    assert len(lines) == len(expected), lines
    for line, code, (_, want) in zip(lines, codes, expected, strict=True):
        assert set(line) == FIELDS
        got = (line["caller"], line["tenant"], line["method"], line["resource"], line["outcome"])
        assert got == (*want[:4], want[4] or code)
        assert line["outcome"] == code
    text = audit_file.read_text()
    for token in (writer, admin, reader):
        assert token not in text
        assert token.split(".")[2] not in text  # not even the signature


def test_default_destination_is_the_crm_audit_logger(
    keys,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    for server in serve(tmp_path_factory, keys.server_args()):
        token = hs256(keys, "admin", sub="root")
        models = model_pb2_grpc.ModelServiceStub(server.channel)
        models.ReloadModels(model_pb2.ReloadModelsRequest(), metadata=bearer(token), timeout=10)
        # The line is written before the reply; the test reads the server's stderr through a
        # pipe, with no event for "read up to here": poll with a deadline.
        deadline = time.monotonic() + 10
        while not (audit := [r for r in server.log_records() if r.get("logger") == "crm.audit"]):
            assert time.monotonic() < deadline, "no audit line in the server log"
            time.sleep(0.05)
        assert [(r["caller"], r["method"], r["outcome"]) for r in audit] == [
            ("root", "/crm.v1.ModelService/ReloadModels", "OK")
        ]
        assert token not in server.logs()

"""Tenants kept apart: a real server with --tenants and signed tokens, two tenants with models
and one without, each seeing only its own models, logs, campaigns, alerts and statistics."""

from __future__ import annotations

import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import jwt
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from crm.v1 import (
    campaign_pb2,
    campaign_pb2_grpc,
    churn_pb2,
    churn_pb2_grpc,
    common_pb2,
    integrity_pb2,
    integrity_pb2_grpc,
    model_pb2,
    model_pb2_grpc,
)
from tests.helpers import sample, scrape
from tests.serverproc import RunningServer, launch
from tests.serving.helpers import snapshot

ISSUER, AUDIENCE = "crm-tests", "crm-serving"


def _token(secret: bytes, tenant: str | None, scope: str = "*") -> str:
    now = int(time.time())
    claims = {"sub": f"svc-{tenant}", "scope": scope, "iat": now, "exp": now + 600}
    claims |= {"iss": ISSUER, "aud": AUDIENCE}
    if tenant is not None:
        claims["tenant"] = tenant
    return jwt.encode(claims, secret, algorithm="HS256")


@pytest.fixture(scope="module")
def tenant_server(
    trained_artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningServer, bytes]]:
    root = tmp_path_factory.mktemp("tenants")
    for tenant in ("acme", "globex"):  # initech has no directory: no models
        shutil.copytree(trained_artifacts, root / "artifacts" / tenant)
    secret = secrets.token_bytes(32)
    (root / "secret").write_bytes(secret)
    server = launch(
        root / "artifacts",
        root / "data",
        [
            "--tenants", "true", "--auth-hmac-secret-file", str(root / "secret"),
            "--auth-issuer", ISSUER, "--auth-audience", AUDIENCE, "--metrics-tenant-label", "true",
        ],
    )  # fmt: skip
    try:
        yield server, secret
    finally:
        server.stop()


def _md(secret: bytes, tenant: str | None) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {_token(secret, tenant)}")]


def test_each_tenant_scores_with_its_own_models_and_one_without_is_unavailable(
    tenant_server: tuple[RunningServer, bytes],
) -> None:
    server, secret = tenant_server
    churn = churn_pb2_grpc.ChurnServiceStub(server.channel)
    models = model_pb2_grpc.ModelServiceStub(server.channel)
    request = churn_pb2.PredictChurnRequest(
        customers=[
            common_pb2.CustomerInput(customer_id=str(snapshot(server.artifacts / "acme")[0][0]))
        ]
    )
    for tenant in ("acme", "globex"):
        reply = churn.PredictChurn(request, metadata=_md(secret, tenant), timeout=30)
        assert reply.model.name == "churn" and len(reply.predictions) == 1
    with pytest.raises(grpc.RpcError) as err:
        churn.PredictChurn(request, metadata=_md(secret, "initech"), timeout=30)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    listed = models.ListModels(model_pb2.ListModelsRequest(), metadata=_md(secret, "initech"))
    assert list(listed.models) == []
    assert models.ListModels(model_pb2.ListModelsRequest(), metadata=_md(secret, "acme")).models
    # initech's outage is its own: acme still scores.
    assert churn.PredictChurn(request, metadata=_md(secret, "acme"), timeout=30).predictions


def test_a_token_without_a_tenant_is_refused(tenant_server: tuple[RunningServer, bytes]) -> None:
    server, secret = tenant_server
    churn = churn_pb2_grpc.ChurnServiceStub(server.channel)
    with pytest.raises(grpc.RpcError) as err:
        churn.GetChurnStats(churn_pb2.GetChurnStatsRequest(), metadata=_md(secret, None))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_health_needs_no_credentials(tenant_server: tuple[RunningServer, bytes]) -> None:
    server, _ = tenant_server
    health = health_pb2_grpc.HealthStub(server.channel)
    reply = health.Check(health_pb2.HealthCheckRequest(service="crm.v1.ChurnService"))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_integrity_logs_are_per_tenant(tenant_server: tuple[RunningServer, bytes]) -> None:
    server, secret = tenant_server
    stub = integrity_pb2_grpc.IntegrityServiceStub(server.channel)
    acme, globex = _md(secret, "acme"), _md(secret, "globex")
    stub.AppendLeaves(
        integrity_pb2.AppendLeavesRequest(log="orders", leaves=[b"a1", b"a2", b"a3"]),
        metadata=acme,
    )
    with pytest.raises(grpc.RpcError) as err:
        stub.GetTreeHead(integrity_pb2.GetTreeHeadRequest(log="orders"), metadata=globex)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        stub.GetLeaves(integrity_pb2.GetLeavesRequest(log="orders"), metadata=globex)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    stub.AppendLeaves(
        integrity_pb2.AppendLeavesRequest(log="orders", leaves=[b"g1"]), metadata=globex
    )
    mine = stub.GetTreeHead(integrity_pb2.GetTreeHeadRequest(log="orders"), metadata=acme)
    theirs = stub.GetTreeHead(integrity_pb2.GetTreeHeadRequest(log="orders"), metadata=globex)
    assert (mine.tree_head.tree_size, theirs.tree_head.tree_size) == (3, 1)
    assert mine.tree_head.root_hash != theirs.tree_head.root_hash
    # Without a shared --signing-key-file each tenant's data dir holds its own signing key.
    assert mine.tree_head.public_key != theirs.tree_head.public_key


def test_saved_campaigns_are_per_tenant(tenant_server: tuple[RunningServer, bytes]) -> None:
    server, secret = tenant_server
    stub = campaign_pb2_grpc.CampaignServiceStub(server.channel)
    acme, globex = _md(secret, "acme"), _md(secret, "globex")
    plan = stub.PlanCampaigns(
        campaign_pb2.PlanCampaignsRequest(budget=250, max_discount=0.3, min_margin=0.1),
        metadata=acme,
        timeout=60,
    )
    saved = stub.SaveCampaign(
        campaign_pb2.SaveCampaignRequest(name="acme spring", plan=plan), metadata=acme
    ).campaign
    listed = stub.ListCampaigns(campaign_pb2.ListCampaignsRequest(), metadata=acme)
    assert saved.id in [c.id for c in listed.campaigns]
    others = stub.ListCampaigns(campaign_pb2.ListCampaignsRequest(), metadata=globex)
    assert saved.id not in [c.id for c in others.campaigns]
    assert all(c.name != "acme spring" for c in others.campaigns)


def test_alerts_and_statistics_are_per_tenant(tenant_server: tuple[RunningServer, bytes]) -> None:
    server, secret = tenant_server
    churn = churn_pb2_grpc.ChurnServiceStub(server.channel)
    acme, globex = _md(secret, "acme"), _md(secret, "globex")
    everything = churn_pb2.WatchChurnAlertsRequest(min_risk_level=churn_pb2.RISK_LEVEL_LOW)
    stream = churn.WatchChurnAlerts(everything, metadata=globex, timeout=60)
    keys: list[str] = []
    seen = threading.Condition()

    def read() -> None:
        try:
            for message in stream:
                with seen:
                    keys.append(message.alert.request_key)
                    seen.notify_all()
        except grpc.RpcError:
            pass

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    customer_id = str(snapshot(server.artifacts / "acme")[0][0])

    def score(metadata: list[tuple[str, str]], key: str) -> None:
        customer = common_pb2.CustomerInput(customer_id=customer_id, request_key=key)
        churn.PredictChurn(
            churn_pb2.PredictChurnRequest(customers=[customer]), metadata=metadata, timeout=30
        )

    try:
        deadline = time.monotonic() + 30
        with seen:  # until the watcher is subscribed: a warm-up call of globex's reaches it
            while "warm-up" not in keys:
                assert time.monotonic() < deadline, "the watcher never received an alert"
                score(globex, "warm-up")
                seen.wait(0.2)
        before = churn.GetChurnStats(churn_pb2.GetChurnStatsRequest(), metadata=globex)
        score(acme, "acme-call")
        score(globex, "globex-call")
        with seen:
            assert seen.wait_for(lambda: "globex-call" in keys, timeout=30)
        # Alerts reach a watcher in the order their calls scored: acme's would precede.
        assert "acme-call" not in keys
        after = churn.GetChurnStats(churn_pb2.GetChurnStatsRequest(), metadata=globex)
        assert after.live.scored - before.live.scored == 1
    finally:
        stream.cancel()
        reader.join(timeout=10)


def test_calls_are_counted_per_tenant_with_the_label_on(
    tenant_server: tuple[RunningServer, bytes],
) -> None:
    server, secret = tenant_server
    models = model_pb2_grpc.ModelServiceStub(server.channel)
    for _ in range(3):
        models.ListModels(model_pb2.ListModelsRequest(), metadata=_md(secret, "globex"))
    labels = {"tenant": "globex", "grpc_method": "ListModels", "grpc_code": "OK"}
    assert sample(scrape(server.metrics_url), "crm_tenant_calls_total", **labels) >= 3
    # grpc_server_* never carry the tenant.
    assert not any(
        "tenant" in dict(ls) for (n, ls) in scrape(server.metrics_url) if n.startswith("grpc_")
    )

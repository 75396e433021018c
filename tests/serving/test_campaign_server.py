"""Campaign planning through `python -m server` on trained artifacts: saves survive a restart,
advisory actions are marked, and an unset max_discount means the documented default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest

from clients import CrmClient
from crm.v1 import campaign_pb2, campaign_pb2_grpc
from server.campaign.wire import DEFAULT_MAX_DISCOUNT
from tests.helpers import run_cli
from tests.serverproc import REPO


def test_plan_draft_save_and_list_across_a_restart(
    start_server, trained_artifacts, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    server = start_server(trained_artifacts, data_dir)
    with CrmClient(server.target, timeout=30) as client:
        assert client.health("crm.v1.CampaignService") == "SERVING"
        forecast = client.campaign.forecast_demand()
        assert forecast.model.name == "demand"
        assert forecast.forecasts
        assert all(len(f.daily_units) == 7 for f in forecast.forecasts if f.error is None)
        plan = client.campaign.plan_campaigns(500.0, max_discount=0.3, min_margin=0.1)
        assert plan.actions, "the default synthetic inventory has overstock to clear"
        assert plan.budget_used <= 500.0 + 1e-9
        assert all(a.discount <= 0.3 + 1e-12 for a in plan.actions)
        assert {m.name for m in plan.models} >= {"demand", "segmentation", "churn"}
        paid = next(a for a in plan.actions if a.budget_used > 0)
        drafts = client.campaign.draft_messages(paid)
        assert drafts.drafts
        saved = client.campaign.save_campaign("weekly", plan, drafts.drafts)
    assert server.stop() == 0
    restarted = start_server(trained_artifacts, data_dir)
    with CrmClient(restarted.target, timeout=30) as client:
        page = client.campaign.list_campaigns()
        assert [c.id for c in page.campaigns] == [saved.id]
        (again,) = page.campaigns
        assert again.name == "weekly"
        assert len(again.plan.actions) == len(plan.actions)
        assert again.plan.budget_used == pytest.approx(plan.budget_used)


def _plan(stub: campaign_pb2_grpc.CampaignServiceStub, **fields: object) -> Any:
    request = campaign_pb2.PlanCampaignsRequest(budget=500.0, min_margin=0.1, **fields)
    return stub.PlanCampaigns(request, timeout=30)


def test_advisory_actions_are_marked_and_max_discount_defaults_to_the_documented_value(
    start_server, trained_artifacts
) -> None:
    server = start_server(trained_artifacts)
    stub = campaign_pb2_grpc.CampaignServiceStub(server.channel)
    default = _plan(stub)
    advisory = [a for a in default.actions if a.advisory]
    paid = [a for a in default.actions if not a.advisory]
    assert advisory and paid, "the default inventory has stockout risks and stock to clear"
    for a in advisory:  # advice: nothing to send, no one to send it to, nothing spent
        assert a.objective == campaign_pb2.CAMPAIGN_OBJECTIVE_PROTECT_STOCKOUT
        assert (a.channel, a.audience_size, a.target_segment) == (0, 0, 0)
        assert a.budget_used == 0 and a.discount == 0 and a.expected_margin == 0
    for a in paid:
        assert a.objective != campaign_pb2.CAMPAIGN_OBJECTIVE_PROTECT_STOCKOUT
        assert a.channel != campaign_pb2.CHANNEL_UNSPECIFIED and a.audience_size > 0
    ranks = [a.rank for a in default.actions]
    assert ranks == sorted(ranks) and max(a.rank for a in paid) < min(a.rank for a in advisory)
    with pytest.raises(grpc.RpcError) as err:
        stub.DraftMessages(campaign_pb2.DraftMessagesRequest(action=advisory[0]), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    assert not campaign_pb2.PlanCampaignsRequest(budget=1).HasField("max_discount")
    assert _plan(stub, max_discount=DEFAULT_MAX_DISCOUNT) == default  # unset plans like 0.3
    assert any(a.discount > 0 for a in paid), "the default plan discounts something"
    assert max(a.discount for a in default.actions) <= DEFAULT_MAX_DISCOUNT + 1e-12
    none = _plan(stub, max_discount=0.0)
    assert none.actions and all(a.discount == 0 for a in none.actions)  # explicit 0: no discount
    assert any(not a.advisory for a in none.actions), "contact-only offers remain"

    with CrmClient(server.target, timeout=30) as client:  # the client leaves it unset too
        plan = client.campaign.plan_campaigns(500.0, min_margin=0.1)
        assert [a.advisory for a in plan.actions] == [a.advisory for a in default.actions]
        assert [a.discount for a in plan.actions] == [a.discount for a in default.actions]
        zero = client.campaign.plan_campaigns(500.0, min_margin=0.1, max_discount=0)
        assert all(a.discount == 0 for a in zero.actions)
    out = run_cli("--target", server.target, "campaign", "plan", "--budget", "500",
                  "--max-discount", "0", "--brief")  # fmt: skip
    assert out.returncode == 0, out.stderr
    rows = [r.split() for r in out.stdout.splitlines()[2:] if r[:3].strip().isdigit()]
    assert rows and all(
        r[7] == "0%" for r in rows
    )  # disc, after # kind objective product segment audience channel
    assert f"{len(advisory)} advisory" in out.stdout


def test_the_proto_documents_the_max_discount_default() -> None:
    """The 0.3 lives in server/campaign/wire.py; campaign.proto must state that same value."""
    proto = (REPO / "protos" / "crm" / "v1" / "campaign.proto").read_text()
    assert f"Unset = the default, {DEFAULT_MAX_DISCOUNT:g};" in proto

"""CampaignClient and `crm-client campaign ...` against the real service."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from clients.campaign import (
    CampaignClient,
    InventoryItem,
    plan_from_proto,
    plan_to_proto,
    read_inventory_csv,
)
from clients.cli import main as cli_main
from clients.errors import CrmError
from crm.v1 import campaign_pb2
from tests.campaign.conftest import CampaignServer


@pytest.fixture
def client(campaign_server: CampaignServer) -> CampaignClient:
    return CampaignClient(campaign_server.channel, timeout=30)


def test_forecast_and_plan_as_dataclasses(client: CampaignClient) -> None:
    forecast = client.forecast_demand(horizon_days=2)
    assert forecast.model.name == "demand"
    best = max(forecast.forecasts, key=lambda f: (f.total_units, f.product_id))
    assert len(best.daily_units) == 2 and best.error is None
    (missing,) = client.forecast_demand(["NOPE"]).forecasts
    assert missing.error is not None and missing.error.code == "NOT_FOUND"

    daily = best.total_units / 2
    inventory = [InventoryItem(best.product_id, round(daily * 500), 1.0, 10.0, 0, 7)]
    plan = client.plan_campaigns(100, max_discount=0.25, channels=["sms"], inventory=inventory)
    (position,) = plan.inventory
    assert (position.product_id, position.status) == (best.product_id, "OVERSTOCK")
    clear = next(a for a in plan.actions if a.product_id == best.product_id)
    assert (clear.objective, clear.channel) == ("CLEAR_OVERSTOCK", "SMS")
    assert clear.target_segment in {"VIP", "LOYAL", "REGULAR", "NEW", "AT_RISK", "LOST"}
    assert plan.budget_used <= 100
    assert plan_from_proto(plan_to_proto(plan)) == plan


def test_drafts_save_and_iterate(client: CampaignClient) -> None:
    plan = client.plan_campaigns(50)
    action = next(a for a in plan.actions if a.budget_used > 0)
    drafts = client.draft_messages(action, ["email", "sms"], {"first_name": "Sam"})
    assert drafts.writer == "templates-v1"
    assert [d.channel for d in drafts.drafts] == ["EMAIL", "SMS"]
    assert "Sam" in drafts.drafts[0].body
    first = client.save_campaign("first", plan, drafts.drafts, notes="try")
    second = client.save_campaign("second", plan)
    assert first.plan == plan and first.drafts == drafts.drafts and first.notes == "try"
    assert first.created_at.tzinfo is not None
    assert [c.id for c in client.iter_campaigns(page_size=1)] == [second.id, first.id]
    page = client.list_campaigns(page_size=1)
    assert page.campaigns[0].id == second.id and page.next_page_token


def test_errors_carry_field_violations(client: CampaignClient) -> None:
    with pytest.raises(CrmError) as err:
        client.plan_campaigns(-5, max_discount=2)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert {v.field for v in err.value.violations} == {"budget", "max_discount"}


def run_cli(argv: list[str], target: str) -> int:
    """The real `crm-client` entry point, in-process so capsys sees its output."""
    return cli_main(["--target", target, "--timeout", "30", *argv])


def write_inventory(path: Path, rows: list[str]) -> Path:
    header = "product_id,stock_on_hand,unit_cost,unit_price,units_on_order,lead_time_days,category"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_cli_plan_prints_a_table(
    campaign_server: CampaignServer,
    client: CampaignClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ranked = sorted(
        client.forecast_demand().forecasts, key=lambda f: (-f.total_units, f.product_id)
    )
    over, low = ranked[0], ranked[1]
    csv = write_inventory(
        tmp_path / "inv.csv",
        [
            f"{over.product_id},{round(over.total_units / 7 * 400)},1,10,0,7,",
            f"{low.product_id},0,1,10,100,14,",
        ],
    )
    assert read_inventory_csv(csv)[1] == InventoryItem(low.product_id, 0, 1, 10, 100, 14, "")
    code = run_cli(
        ["campaign", "plan", "--budget", "40", "--inventory", str(csv), "--save", "cli plan"],
        campaign_server.target,
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    header, rule, *rows = out.splitlines()
    assert set(rule) == {"-"}
    assert header.split()[:5] == ["#", "kind", "objective", "product", "segment"]
    assert any(r.split()[1:3] == ["paid", "CLEAR_OVERSTOCK"] and over.product_id in r for r in rows)
    assert any(
        r.split()[1:3] == ["advice", "PROTECT_STOCKOUT"] and low.product_id in r for r in rows
    )
    paid = sum(r.split()[1:2] == ["paid"] for r in rows)
    assert paid >= 1 and f"actions: {paid} paid, 1 advisory" in out
    assert any(r.startswith("budget 40.00") for r in rows)
    assert "1 overstock, 1 stockout_risk" in out and "Stockout risk:" in out
    assert "saved as" in err
    assert [c.name for c in client.iter_campaigns()] == ["cli plan"]

    code = run_cli(["campaign", "list"], campaign_server.target)
    out, _ = capsys.readouterr()
    assert code == 0 and "cli plan" in out


def test_cli_reports_bad_input_by_csv_line(
    campaign_server: CampaignServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = write_inventory(
        tmp_path / "bad.csv", ["A,1,1,10,0,7,", "B,-3,1,10,0,7,", "A,1,1,10,0,7,"]
    )
    code = run_cli(
        ["campaign", "plan", "--budget", "10", "--inventory", str(csv)], campaign_server.target
    )
    _, err = capsys.readouterr()
    assert code == 2
    assert "INVALID_ARGUMENT" in err
    assert "inventory[1].stock_on_hand (" in err and "bad.csv line 3)" in err
    assert "inventory[2].product_id (" in err and "Traceback" not in err

    unreadable = write_inventory(tmp_path / "worse.csv", ["A,lots,1,10,0,7,"])
    code = run_cli(["campaign", "plan", "--budget", "10", "--inventory", str(unreadable)], "x:1")
    _, err = capsys.readouterr()
    assert code == 2 and "worse.csv line 2" in err

    with pytest.raises(SystemExit):
        run_cli(["campaign", "plan", "--budget", "10", "--max-discount", "1.5"], "x:1")


def test_cli_unreachable_server(capsys: pytest.CaptureFixture[str]) -> None:
    code = run_cli(["--timeout", "1", "campaign", "plan", "--budget", "1"], "127.0.0.1:1")
    _, err = capsys.readouterr()
    assert code == 2 and ("UNAVAILABLE" in err or "DEADLINE_EXCEEDED" in err)


def test_proto_round_trip_keeps_every_field(campaign_server: CampaignServer) -> None:
    response = campaign_server.stub.PlanCampaigns(
        campaign_pb2.PlanCampaignsRequest(budget=80, max_discount=0.2), timeout=30
    )
    assert any(a.advisory for a in response.actions) and not all(
        a.advisory for a in response.actions
    )
    assert plan_to_proto(plan_from_proto(response)) == response

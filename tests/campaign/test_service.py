"""CampaignService through the generated stubs, on artifacts trained by the training module."""

from __future__ import annotations

import base64
import json
import math
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from clients.errors import CrmError
from crm.v1 import campaign_pb2
from server.campaign.assumptions import Assumptions
from server.campaign.drafts import fits_sms
from server.campaign.inventory import MAX_LEAD_TIME_DAYS, MAX_UNIT_MONEY, MAX_UNITS
from server.campaign.wire import MAX_BUDGET
from tests.campaign.conftest import CampaignServer

S = campaign_pb2
PAID = {
    S.CAMPAIGN_OBJECTIVE_CLEAR_OVERSTOCK,
    S.CAMPAIGN_OBJECTIVE_MOVE_DEAD_STOCK,
    S.CAMPAIGN_OBJECTIVE_WIN_BACK,
    S.CAMPAIGN_OBJECTIVE_RETAIN_HIGH_VALUE,
}


def failure(call, request) -> CrmError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as err:
        call(request, timeout=10)
    return CrmError.from_rpc_error(err.value)


def fields_of(error: CrmError) -> set[str]:
    return {v.field for v in error.violations}


def top_products(server: CampaignServer, n: int) -> list[campaign_pb2.ProductForecast]:
    """The n best sellers by forecast (ties by id), for inventories with known statuses."""
    response = server.stub.ForecastDemand(S.ForecastDemandRequest(), timeout=30)
    ranked = sorted(response.forecasts, key=lambda f: (-f.total_units, f.product_id))
    assert ranked[n - 1].total_units > 0
    return ranked[:n]


def test_forecast_every_product_and_unknown_ones(campaign_server: CampaignServer) -> None:
    stub = campaign_server.stub
    everything = stub.ForecastDemand(S.ForecastDemandRequest(), timeout=30)
    assert everything.model.name == "demand" and everything.model.version >= 1
    assert everything.start_date.seconds % 86_400 == 0  # UTC midnight
    assert len(everything.forecasts) > 10
    for f in everything.forecasts:
        assert not f.HasField("error")
        assert len(f.daily_units) == 7 and all(u >= 0 for u in f.daily_units)
        assert f.total_units == pytest.approx(sum(f.daily_units))
    known = everything.forecasts[3].product_id
    some = stub.ForecastDemand(
        S.ForecastDemandRequest(product_ids=[known, "NO-SUCH", known], horizon_days=3), timeout=10
    )
    first, missing, again = some.forecasts
    assert list(first.daily_units) == list(everything.forecasts[3].daily_units[:3])
    assert again == first
    assert (missing.product_id, missing.error.code, missing.error.field) == (
        "NO-SUCH", 5, "product_ids[1]",
    )  # fmt: skip
    assert not missing.daily_units


def test_forecast_bad_input(campaign_server: CampaignServer) -> None:
    err = failure(
        campaign_server.stub.ForecastDemand,
        S.ForecastDemandRequest(product_ids=["A", ""], horizon_days=8),
    )
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields_of(err) == {"horizon_days", "product_ids[1]"}


def test_plan_on_the_default_inventory(campaign_server: CampaignServer) -> None:
    request = S.PlanCampaignsRequest(budget=250, max_discount=0.3, min_margin=0.1)
    plan = campaign_server.stub.PlanCampaigns(request, timeout=30)
    assert {m.name for m in plan.models} == {
        "demand", "products", "inventory", "segmentation", "churn", "features",
    }  # fmt: skip
    assert plan.currency and plan.algorithm.startswith("greedy by expected margin")
    assert plan.budget == 250 and 0 < plan.budget_used <= 250
    assert round(sum(a.budget_used for a in plan.actions), 2) == pytest.approx(plan.budget_used)
    assert plan.expected_margin == pytest.approx(sum(a.expected_margin for a in plan.actions))
    statuses = {i.status for i in plan.inventory}
    assert S.INVENTORY_STATUS_UNSPECIFIED not in statuses and len(statuses) >= 3
    assert [a.rank for a in plan.actions] == list(range(1, len(plan.actions) + 1))
    at_risk = {i.product_id for i in plan.inventory if i.status == S.INVENTORY_STATUS_STOCKOUT_RISK}
    for a in plan.actions:
        assert 0 <= a.discount <= 0.3 and a.rationale
        if a.objective in PAID:
            assert a.audience_size > 0 and a.target_segment_name and a.expected_margin > 0
            assert a.product_id not in at_risk
    defaults = Assumptions()
    echoed = plan.assumptions
    assert dict(echoed.response_rate_by_segment) == defaults.response_rate_by_segment
    assert dict(echoed.price_elasticity_by_category) == defaults.price_elasticity_by_category
    assert echoed.overstock_cover_days == defaults.overstock_cover_days
    # same inputs, same plan, to the byte
    again = campaign_server.stub.PlanCampaigns(request, timeout=30)
    assert again.SerializeToString(deterministic=True) == plan.SerializeToString(deterministic=True)


def test_plan_on_a_hand_made_inventory(trained_artifacts: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "campaign_assumptions.json").write_text('{"max_actions_per_segment": 10}')
    server = CampaignServer(trained_artifacts, data)
    try:
        over, low, steady = top_products(server, 3)
        d_over, d_low, d_steady = (f.total_units / 7 for f in (over, low, steady))
        inventory = [
            # 400 days of cover at a 90% margin: worth a clearing discount.
            S.InventoryItem(product_id=over.product_id, stock_on_hand=round(d_over * 400),
                            unit_cost=1, unit_price=10, lead_time_days=7),
            # two days of stock, a 14-day lead time: stockout risk.
            S.InventoryItem(product_id=low.product_id, stock_on_hand=round(d_low * 2),
                            unit_cost=1, unit_price=10, units_on_order=500, lead_time_days=14),
            S.InventoryItem(product_id=steady.product_id, stock_on_hand=round(d_steady * 30),
                            unit_cost=5, unit_price=10, lead_time_days=7),
            # not in the product snapshot: no forecast, so not diagnosed and not planned
            S.InventoryItem(product_id="NEW-LINE", stock_on_hand=500, unit_cost=1, unit_price=10),
        ]  # fmt: skip
        plan = server.stub.PlanCampaigns(
            S.PlanCampaignsRequest(budget=5000, max_discount=0.4, inventory=inventory), timeout=30
        )
        status = {i.product_id: i.status for i in plan.inventory}
        assert status == {
            over.product_id: S.INVENTORY_STATUS_OVERSTOCK,
            low.product_id: S.INVENTORY_STATUS_STOCKOUT_RISK,
            steady.product_id: S.INVENTORY_STATUS_HEALTHY,
            "NEW-LINE": S.INVENTORY_STATUS_UNSPECIFIED,
        }
        assert not [a for a in plan.actions if a.product_id == "NEW-LINE"]
        assert "inventory" not in {m.name for m in plan.models}
        (clear,) = [a for a in plan.actions if a.product_id == over.product_id]
        assert clear.objective == S.CAMPAIGN_OBJECTIVE_CLEAR_OVERSTOCK
        assert 0 < clear.discount <= 0.4
        assert clear.category  # filled from the catalogue
        # units are rounded to 0.01 and money to cents: 0.005 x 10 + 0.005 at most apart
        assert clear.expected_revenue == pytest.approx(
            clear.expected_extra_units * 10 * (1 - clear.discount), abs=0.056
        )
        (protect,) = [a for a in plan.actions if a.product_id == low.product_id]
        assert protect.objective == S.CAMPAIGN_OBJECTIVE_PROTECT_STOCKOUT
        assert (protect.discount, protect.budget_used, protect.audience_size) == (0, 0, 0)
        assert not [a for a in plan.actions if a.product_id == steady.product_id]

        nothing = server.stub.PlanCampaigns(
            S.PlanCampaignsRequest(budget=0, max_discount=0.4, inventory=inventory), timeout=30
        )
        assert [a.objective for a in nothing.actions] == [S.CAMPAIGN_OBJECTIVE_PROTECT_STOCKOUT]
        assert nothing.budget_used == 0

        for cents in (1, 37, 1234, 9999):
            tight = server.stub.PlanCampaigns(
                S.PlanCampaignsRequest(budget=cents / 100, max_discount=0.4, inventory=inventory),
                timeout=30,
            )
            spent = sum(round(a.budget_used * 100) for a in tight.actions)
            assert spent <= cents and tight.budget_used <= cents / 100
    finally:
        server.stop()


def test_concurrent_plans_and_saves_agree(campaign_server: CampaignServer) -> None:
    request = S.PlanCampaignsRequest(budget=75, max_discount=0.2)

    def plan_and_save(i: int) -> bytes:
        plan = campaign_server.stub.PlanCampaigns(request, timeout=30)
        campaign_server.stub.SaveCampaign(
            S.SaveCampaignRequest(name=f"c{i}", plan=plan), timeout=30
        )
        return plan.SerializeToString(deterministic=True)

    with ThreadPoolExecutor(8) as pool:
        plans = set(pool.map(plan_and_save, range(16)))
    assert len(plans) == 1
    listed = campaign_server.stub.ListCampaigns(S.ListCampaignsRequest(page_size=100), timeout=10)
    assert sorted(c.name for c in listed.campaigns) == sorted(f"c{i}" for i in range(16))


def test_plan_bad_inputs_name_their_fields(campaign_server: CampaignServer) -> None:
    good = S.InventoryItem(product_id="P0", stock_on_hand=1, unit_cost=1, unit_price=2)
    inventory = [good]
    inventory += [
        S.InventoryItem(product_id=f"P{i}", stock_on_hand=1, unit_price=2) for i in (1, 2, 3, 4)
    ]
    inventory[2].stock_on_hand = -5
    inventory.append(S.InventoryItem(product_id="P0", stock_on_hand=1, unit_price=2))
    err = failure(
        campaign_server.stub.PlanCampaigns,
        S.PlanCampaignsRequest(
            budget=-1,
            max_discount=1.5,
            min_margin=1,
            horizon_days=9,
            channels=[1, 7],
            inventory=inventory,
        ),
    )
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields_of(err) == {
        "budget", "max_discount", "min_margin", "horizon_days", "channels[1]",
        "inventory[2].stock_on_hand", "inventory[5].product_id",
    }  # fmt: skip
    for bad in (math.nan, math.inf):
        err = failure(campaign_server.stub.PlanCampaigns, S.PlanCampaignsRequest(budget=bad))
        assert fields_of(err) == {"budget"}


def test_plan_amounts_beyond_their_bounds_name_their_fields(
    campaign_server: CampaignServer,
) -> None:
    """Amounts that overflowed the planner's integer cents (1e308, inf, NaN) were INTERNAL."""
    stub = campaign_server.stub
    (top,) = top_products(campaign_server, 1)
    for budget in (1e308, MAX_BUDGET * 1.001, math.inf, -math.inf, math.nan):
        err = failure(stub.PlanCampaigns, S.PlanCampaignsRequest(budget=budget))
        assert err.code == grpc.StatusCode.INVALID_ARGUMENT and fields_of(err) == {"budget"}
    for bad in (math.nan, math.inf, 1e308):
        err = failure(
            stub.PlanCampaigns,
            S.PlanCampaignsRequest(budget=10, max_discount=bad, min_margin=bad),
        )
        assert err.code == grpc.StatusCode.INVALID_ARGUMENT
        assert fields_of(err) == {"max_discount", "min_margin"}
    item = {"product_id": top.product_id, "stock_on_hand": 10, "unit_cost": 1, "unit_price": 2}
    limits = {
        "unit_price": MAX_UNIT_MONEY,
        "unit_cost": MAX_UNIT_MONEY,
        "stock_on_hand": MAX_UNITS,
        "units_on_order": MAX_UNITS,
        "lead_time_days": MAX_LEAD_TIME_DAYS,
    }
    for name, most in limits.items():
        for bad in (1e308, most * 1.001, math.inf, math.nan):
            inventory = [S.InventoryItem(**{**item, name: bad})]
            err = failure(
                stub.PlanCampaigns,
                S.PlanCampaignsRequest(budget=1e308, max_discount=0.5, inventory=inventory),
            )
            assert err.code == grpc.StatusCode.INVALID_ARGUMENT, (name, bad, err)
            assert fields_of(err) == {"budget", f"inventory[0].{name}"}, (name, bad)
    # At every bound at once the plan is computed, and every amount in it is finite.
    at_bounds = S.InventoryItem(
        product_id=top.product_id,
        stock_on_hand=MAX_UNITS,
        units_on_order=MAX_UNITS,
        unit_cost=0,
        unit_price=MAX_UNIT_MONEY,
        lead_time_days=0,
    )
    plan = stub.PlanCampaigns(
        S.PlanCampaignsRequest(budget=MAX_BUDGET, max_discount=1, inventory=[at_bounds]),
        timeout=30,
    )
    assert plan.actions and plan.budget_used <= MAX_BUDGET
    amounts = [plan.budget_used, plan.expected_margin]
    amounts += [a.expected_revenue for a in plan.actions]
    amounts += [a.expected_margin for a in plan.actions]
    amounts += [a.budget_used for a in plan.actions]
    assert all(math.isfinite(x) for x in amounts)


def test_plan_needs_an_inventory_and_its_models(trained_artifacts: Path, tmp_path: Path) -> None:
    partial = tmp_path / "artifacts"
    shutil.copytree(trained_artifacts, partial, ignore=shutil.ignore_patterns("inventory"))
    server = CampaignServer(partial, tmp_path / "data")
    try:
        err = failure(server.stub.PlanCampaigns, S.PlanCampaignsRequest(budget=10))
        assert err.code == grpc.StatusCode.FAILED_PRECONDITION
        assert "inventory" in err.message
    finally:
        server.stop()
    shutil.rmtree(partial / "demand")
    server = CampaignServer(partial, tmp_path / "data")
    try:
        err = failure(server.stub.PlanCampaigns, S.PlanCampaignsRequest(budget=10))
        assert err.code == grpc.StatusCode.UNAVAILABLE
        assert "demand" in err.message
        drafts = server.stub.DraftMessages(  # drafts need no model
            S.DraftMessagesRequest(
                action=S.CampaignAction(objective=S.CAMPAIGN_OBJECTIVE_WIN_BACK, discount=0.1)
            ),
            timeout=10,
        )
        assert len(drafts.drafts) == 3
    finally:
        server.stop()


def test_drafts_for_planned_actions(campaign_server: CampaignServer) -> None:
    plan = campaign_server.stub.PlanCampaigns(
        S.PlanCampaignsRequest(budget=500, max_discount=0.3), timeout=30
    )
    paid = [a for a in plan.actions if a.objective in PAID]
    assert paid
    fields = {"first_name": "Ana", "store_name": "Acme", "offer_code": "SAVE10"}
    for action in paid:
        request = S.DraftMessagesRequest(action=action, personalization=fields)
        response = campaign_server.stub.DraftMessages(request, timeout=10)
        assert response.writer == "templates-v1"
        email, sms, chat = response.drafts
        assert (email.channel, sms.channel, chat.channel) == (
            S.CHANNEL_EMAIL, S.CHANNEL_SMS, S.CHANNEL_WHATSAPP,
        )  # fmt: skip
        assert email.subject and "Ana" in email.body and "SAVE10" in chat.body
        assert len(sms.body) <= 160 and fits_sms(sms.body)
        assert campaign_server.stub.DraftMessages(request, timeout=10) == response
    only_sms = campaign_server.stub.DraftMessages(
        S.DraftMessagesRequest(action=paid[0], channels=[S.CHANNEL_SMS]), timeout=10
    )
    assert [d.channel for d in only_sms.drafts] == [S.CHANNEL_SMS]


def test_draft_bad_inputs(campaign_server: CampaignServer) -> None:
    stub = campaign_server.stub
    err = failure(stub.DraftMessages, S.DraftMessagesRequest())
    assert fields_of(err) == {"action", "action.objective"}
    advisory = S.CampaignAction(objective=S.CAMPAIGN_OBJECTIVE_PROTECT_STOCKOUT, product_id="X")
    err = failure(stub.DraftMessages, S.DraftMessagesRequest(action=advisory))
    assert fields_of(err) == {"action.objective"} and "advisory" in err.violations[0].description
    marked = S.CampaignAction(objective=S.CAMPAIGN_OBJECTIVE_WIN_BACK, advisory=True)
    err = failure(stub.DraftMessages, S.DraftMessagesRequest(action=marked))
    assert fields_of(err) == {"action.advisory"}
    action = S.CampaignAction(objective=S.CAMPAIGN_OBJECTIVE_WIN_BACK, discount=1.2)
    err = failure(
        stub.DraftMessages,
        S.DraftMessagesRequest(
            action=action, channels=[0], personalization={"nickname": "x", "first_name": "a\nb"}
        ),
    )
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields_of(err) == {
        "action.discount", "channels[0]", "personalization.nickname", "personalization.first_name",
    }  # fmt: skip


def test_a_plan_saved_without_advisory_marks_is_stored_marked(
    campaign_server: CampaignServer,
) -> None:
    """A client built before CampaignAction.advisory sends plans without it: stored marked."""
    stub = campaign_server.stub
    plan = stub.PlanCampaigns(S.PlanCampaignsRequest(budget=100), timeout=30)
    marked = [a.advisory for a in plan.actions]
    assert any(marked) and not all(marked)
    old = S.PlanCampaignsResponse()
    old.CopyFrom(plan)
    for action in old.actions:
        action.ClearField("advisory")
    saved = stub.SaveCampaign(S.SaveCampaignRequest(name="old client", plan=old), timeout=10)
    assert [a.advisory for a in saved.campaign.plan.actions] == marked
    listed = stub.ListCampaigns(S.ListCampaignsRequest(), timeout=10).campaigns
    assert [a.advisory for a in listed[0].plan.actions] == marked


def test_save_list_page_and_survive_a_restart(campaign_server: CampaignServer) -> None:
    stub = campaign_server.stub
    plan = stub.PlanCampaigns(S.PlanCampaignsRequest(budget=100, max_discount=0.2), timeout=30)
    drafts = stub.DraftMessages(
        S.DraftMessagesRequest(action=next(a for a in plan.actions if a.objective in PAID)),
        timeout=10,
    ).drafts
    saved = [
        stub.SaveCampaign(
            S.SaveCampaignRequest(name=f"week {i}", plan=plan, drafts=drafts, notes="n"),
            timeout=10,
        ).campaign
        for i in range(5)
    ]
    assert len({s.id for s in saved}) == 5
    assert saved[0].plan == plan and list(saved[0].drafts) == list(drafts)
    assert campaign_server.data_dir.joinpath("campaigns.sqlite3").is_file()

    campaign_server.restart()
    stub = campaign_server.stub
    names, token = [], ""
    while True:
        page = stub.ListCampaigns(S.ListCampaignsRequest(page_size=2, page_token=token), timeout=10)
        names += [c.name for c in page.campaigns]
        token = page.next_page_token
        if not token:
            break
    assert names == [f"week {i}" for i in range(4, -1, -1)]
    (newest,) = stub.ListCampaigns(S.ListCampaignsRequest(page_size=1), timeout=10).campaigns
    assert newest == saved[-1]
    default = stub.ListCampaigns(S.ListCampaignsRequest(), timeout=10)
    assert len(default.campaigns) == 5 and not default.next_page_token


def test_save_and_list_bad_inputs(campaign_server: CampaignServer) -> None:
    stub = campaign_server.stub
    err = failure(
        stub.SaveCampaign,
        S.SaveCampaignRequest(
            name="  ",
            drafts=[
                S.MessageDraft(channel=S.CHANNEL_SMS, body="x" * 161),
                S.MessageDraft(channel=0, body="hi"),
            ],
        ),
    )
    assert fields_of(err) == {"name", "plan", "drafts[0].body", "drafts[1].channel"}
    for size in (-1, 101):
        err = failure(stub.ListCampaigns, S.ListCampaignsRequest(page_size=size))
        assert fields_of(err) == {"page_size"}
    err = failure(stub.ListCampaigns, S.ListCampaignsRequest(page_token="not-a-token"))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT and fields_of(err) == {"page_token"}
    # Well-formed tokens past SQLite's integers were INTERNAL (OverflowError binding them).
    for position in (str(2**63), str(10**30), "9" * 5000):
        token = base64.urlsafe_b64encode(f"c1:{position}".encode()).decode().rstrip("=")
        err = failure(stub.ListCampaigns, S.ListCampaignsRequest(page_token=token))
        assert err.code == grpc.StatusCode.INVALID_ARGUMENT and fields_of(err) == {"page_token"}


def test_assumption_overrides_are_used_and_echoed(trained_artifacts: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "campaign_assumptions.json").write_text(
        json.dumps({"contact_cost_by_channel": {"email": 1000}, "overstock_cover_days": 365})
    )
    server = CampaignServer(trained_artifacts, data)
    try:
        plan = server.stub.PlanCampaigns(
            S.PlanCampaignsRequest(budget=1000, max_discount=0.3, channels=[S.CHANNEL_EMAIL]),
            timeout=30,
        )
        assert plan.assumptions.contact_cost_by_channel["email"] == 1000
        assert plan.assumptions.overstock_cover_days == 365
        assert all(a.objective not in PAID for a in plan.actions)  # email too dear to pay off
    finally:
        server.stop()

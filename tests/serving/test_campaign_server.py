"""Campaign planning through `python -m server` on trained artifacts; saves survive a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from clients import CrmClient


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

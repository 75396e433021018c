"""Two CampaignServices on one PostgreSQL database behave as one: a campaign saved through one
is listed by the other, and a page token from one continues on the other."""

from __future__ import annotations

from pathlib import Path

from crm.v1 import campaign_pb2
from tests.campaign.conftest import CampaignServer


def test_replicas_share_saved_campaigns(
    trained_artifacts: Path, tmp_path: Path, pg_url: str
) -> None:
    a = CampaignServer(trained_artifacts, tmp_path / "a", store_url=pg_url)
    b = CampaignServer(trained_artifacts, tmp_path / "b", store_url=pg_url)
    try:
        plan = a.stub.PlanCampaigns(
            campaign_pb2.PlanCampaignsRequest(budget=100, max_discount=0.2), timeout=30
        )
        ids = []
        for i in range(5):
            server = (a, b)[i % 2]
            saved = server.stub.SaveCampaign(
                campaign_pb2.SaveCampaignRequest(name=f"c{i}", plan=plan, notes="shared"),
                timeout=10,
            )
            ids.append(saved.campaign.id)
        first = a.stub.ListCampaigns(campaign_pb2.ListCampaignsRequest(page_size=3), timeout=10)
        rest = b.stub.ListCampaigns(
            campaign_pb2.ListCampaignsRequest(page_size=3, page_token=first.next_page_token),
            timeout=10,
        )
        listed = [c.id for c in (*first.campaigns, *rest.campaigns)]
        assert listed == ids[::-1] and not rest.next_page_token
        assert not (tmp_path / "a" / "campaigns.sqlite3").exists()
    finally:
        a.stop()
        b.stop()

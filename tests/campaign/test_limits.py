"""Saved campaigns are bounded in size, and a ListCampaigns page never exceeds the message limit.

Before, two 40 MiB campaigns made every ListCampaigns page larger than the 64 MiB message limit,
for everyone and for good. Here the message limit is 1 MiB, so a few hundred KiB show the same.
SaveCampaign checks nothing in the plan but its presence, so these plans need no models.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from clients.errors import CrmError
from crm.v1 import campaign_pb2, campaign_pb2_grpc
from tests.conftest import StartServer

S = campaign_pb2
KIB = 1024
MIB = 1024 * KIB


def plan_of(size: int, tag: str) -> S.PlanCampaignsResponse:
    """A plan whose encoding is about `size` bytes (rationales at their 4 KiB text limit)."""
    plan = S.PlanCampaignsResponse(algorithm=tag, budget=100)
    for rank in range(size // (4 * KIB)):
        plan.actions.add(rank=rank + 1, product_id=tag, rationale=tag[0] * (4 * KIB))
    return plan


def save(stub: campaign_pb2_grpc.CampaignServiceStub, name: str, size: int) -> S.SavedCampaign:
    request = S.SaveCampaignRequest(name=name, plan=plan_of(size, name))
    return stub.SaveCampaign(request, timeout=30).campaign


def list_all(stub: campaign_pb2_grpc.CampaignServiceStub) -> list[S.ListCampaignsResponse]:
    pages, token = [], ""
    while True:
        page = stub.ListCampaigns(
            S.ListCampaignsRequest(page_size=100, page_token=token), timeout=30
        )
        pages.append(page)
        token = page.next_page_token
        if not token:
            return pages


def failure(call, request) -> CrmError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as err:
        call(request, timeout=30)
    return CrmError.from_rpc_error(err.value)


def test_pages_are_cut_by_bytes_and_list_everything(start_server: StartServer) -> None:
    server = start_server(extra_args=["--max-message-mb", "1"])
    stub = campaign_pb2_grpc.CampaignServiceStub(server.channel)
    saved = [save(stub, f"c{i}", 300 * KIB) for i in range(7)]
    pages = list_all(stub)
    assert all(page.ByteSize() <= MIB for page in pages), [p.ByteSize() for p in pages]
    assert [len(page.campaigns) for page in pages] == [3, 3, 1]
    listed = [c for page in pages for c in page.campaigns]
    assert listed == saved[::-1]  # whole, newest first, each once


def test_saved_campaigns_are_bounded(start_server: StartServer) -> None:
    server = start_server(env={"CRM_MAX_CAMPAIGN_KIB": "64"})
    stub = campaign_pb2_grpc.CampaignServiceStub(server.channel)
    request = S.SaveCampaignRequest(name="too big", plan=plan_of(80 * KIB, "p"))
    err = failure(stub.SaveCampaign, request)
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in err.violations] == ["plan"]
    assert "65536" in err.violations[0].description
    assert not stub.ListCampaigns(S.ListCampaignsRequest(), timeout=10).campaigns
    kept = save(stub, "fits", 48 * KIB)
    (listed,) = stub.ListCampaigns(S.ListCampaignsRequest(), timeout=10).campaigns
    assert listed == kept


def test_a_campaign_stored_under_a_larger_limit_still_lists(
    start_server: StartServer, tmp_path: Path
) -> None:
    first = start_server(data_dir=tmp_path, extra_args=["--max-message-mb", "3"])
    stub = campaign_pb2_grpc.CampaignServiceStub(first.channel)
    small = save(stub, "small", 100 * KIB)
    huge = save(stub, "huge", int(1.5 * MIB))
    newest = save(stub, "newest", 100 * KIB)
    assert first.stop() == 0
    second = start_server(data_dir=tmp_path, extra_args=["--max-message-mb", "1"])
    stub = campaign_pb2_grpc.CampaignServiceStub(second.channel)
    pages = list_all(stub)
    assert all(page.ByteSize() <= MIB for page in pages)
    listed = [c for page in pages for c in page.campaigns]
    assert [c.id for c in listed] == [newest.id, huge.id, small.id]
    assert listed[0] == newest and listed[2] == small
    summary = listed[1]
    assert (summary.name, summary.created_at) == (huge.name, huge.created_at)
    assert not summary.HasField("plan") and "left out" in summary.notes

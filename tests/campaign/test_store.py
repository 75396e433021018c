"""The campaign stores (SQLite and PostgreSQL): save, newest-first paging, restart, tokens,
namespaces; WAL for SQLite."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from crm.v1 import campaign_pb2
from server.campaign.store import (
    BadPageToken,
    CampaignStore,
    CampaignStoreBase,
    decode_token,
    encode_token,
)

OpenCampaigns = Callable[..., CampaignStoreBase]


@pytest.fixture(params=["sqlite", "postgres"])
def open_campaigns(request: pytest.FixtureRequest) -> OpenCampaigns:
    """open_campaigns(path, namespace=""): the backend's store; with PostgreSQL every path
    opens the test's one database (as replicas do)."""
    if request.param == "sqlite":
        return CampaignStore
    url = request.getfixturevalue("pg_url")

    def _open(path: Path, namespace: str = "") -> CampaignStoreBase:
        from server.campaign.pgstore import PgCampaignStore

        return PgCampaignStore(url, namespace)

    return _open


def campaign(name: str, margin: float = 1.0) -> campaign_pb2.SavedCampaign:
    c = campaign_pb2.SavedCampaign(name=name, notes=f"notes of {name}")
    c.plan.budget = 100
    c.plan.expected_margin = margin
    c.plan.actions.add(rank=1, product_id="P1", rationale="because")
    c.drafts.add(channel=campaign_pb2.CHANNEL_SMS, body="Hi")
    return c


def test_save_assigns_id_and_time_and_keeps_everything(
    open_campaigns: OpenCampaigns, tmp_path: Path
) -> None:
    store = open_campaigns(tmp_path / "campaigns.sqlite3")
    original = campaign("spring", 12.5)
    saved = store.save(original)
    assert len(saved.id) == 32 and saved.created_at.seconds > 0
    assert original.id == ""  # the caller's message is not changed
    (listed,), token = store.page(10)
    assert token == "" and listed == saved
    assert listed.plan.actions[0].rationale == "because"
    assert listed.drafts[0].body == "Hi"
    store.close()


def test_newest_first_paging_visits_each_once(
    open_campaigns: OpenCampaigns, tmp_path: Path
) -> None:
    store = open_campaigns(tmp_path / "c.sqlite3")
    ids = [store.save(campaign(f"c{i}")).id for i in range(7)]
    seen, token, pages = [], "", 0
    while True:
        page, token = store.page(3, token)
        seen += [c.id for c in page]
        pages += 1
        if not token:
            break
    assert seen == ids[::-1] and pages == 3
    store.save(campaign("late"))  # a save between pages does not shift later pages
    first, token = store.page(2)
    assert [c.name for c in first] == ["late", "c6"]
    assert [c.name for c in store.page(2, token)[0]] == ["c5", "c4"]
    store.close()


def test_survives_reopening(open_campaigns: OpenCampaigns, tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    store = open_campaigns(path)
    saved = store.save(campaign("kept"))
    store.close()
    again = open_campaigns(path)
    assert again.page(5) == ([saved], "")
    assert again.count() == 1
    again.close()


def test_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    CampaignStore(path).close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("token", ["garbage!", "Yzk6MTI", "", "YzE6eA"])
def test_page_tokens_are_opaque_and_checked(token: str) -> None:
    assert decode_token(encode_token(42)) == 42
    if token:
        with pytest.raises(BadPageToken):
            decode_token(token)


def test_concurrent_saves(open_campaigns: OpenCampaigns, tmp_path: Path) -> None:
    store = open_campaigns(tmp_path / "c.sqlite3")
    threads = [
        threading.Thread(target=lambda i=i: [store.save(campaign(f"t{i}-{k}")) for k in range(20)])
        for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.count() == 80
    page, _ = store.page(100)
    assert len({c.id for c in page}) == 80
    store.close()


def test_pages_cut_by_bytes_visit_each_once(open_campaigns: OpenCampaigns, tmp_path: Path) -> None:
    store = open_campaigns(tmp_path / "c.sqlite3")
    sizes = [100, 5000, 300, 2500, 2500, 40, 9000, 10]
    ids = []
    for i, size in enumerate(sizes):
        c = campaign(f"c{i}")
        c.notes = "n" * size
        ids.append(store.save(c).id)
    seen, token = [], ""
    while True:
        page, token = store.page(100, token, max_bytes=6000)
        assert page
        full = [c for c in page if c.notes.startswith("n")]
        if len(page) > 1:
            assert len(full) == len(page)
            assert sum(c.ByteSize() + 6 for c in page) <= 6000
        seen += [c.id for c in page]
        if not token:
            break
    assert seen == ids[::-1]
    (alone,), _ = store.page(1, "", max_bytes=6000)
    assert alone.id == ids[-1] and alone.notes == "n" * 10
    big, _ = store.page(1, encode_token(8), max_bytes=6000)  # c6 (seq 7, 9000 bytes): a summary
    assert big[0].id == ids[6] and "left out" in big[0].notes
    store.close()


def test_namespaces_are_kept_apart(open_campaigns: OpenCampaigns, tmp_path: Path) -> None:
    a = open_campaigns(tmp_path / "a" / "c.sqlite3", namespace="tenant-a")
    b = open_campaigns(tmp_path / "b" / "c.sqlite3", namespace="tenant-b")
    saved = a.save(campaign("only a"))
    assert b.page(10) == ([], "") and b.count() == 0
    assert a.page(10) == ([saved], "")
    a.close()
    b.close()

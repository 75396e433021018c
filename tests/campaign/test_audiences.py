"""Segment audiences from a hand-made snapshot, and the domain enums against the protos."""

from __future__ import annotations

import numpy as np
import pytest

from crm.v1 import campaign_pb2, segmentation_pb2
from server.campaign.audiences import build_profiles
from server.campaign.types import Channel, Objective, Segment, Status

NAMES = [
    "recency_days", "avg_basket_value", "avg_units_per_invoice", "avg_lines_per_invoice",
    "cat_share__home", "cat_share__toys",
]  # fmt: skip
# basket, units, lines, home share, toys share; clusters 0,0,1,1,2
VALUES = np.array(
    [
        [1, 50, 10, 2, 1.0, 0.0],
        [2, 30, 6, 3, 0.5, 0.5],
        [3, 20, 4, 1, 0.0, 1.0],
        [4, 40, 8, 4, 0.2, 0.8],
        [5, 0, 0, 0, 0.0, 0.0],  # a customer without sales
    ],
    dtype=np.float32,
)
CLUSTERS = np.array([0, 0, 1, 1, 2])
TABLE = {
    0: (Segment.VIP, "VIP"),
    1: (Segment.REGULAR, "Regular"),
    2: (Segment.LOST, "Lost"),
}


def test_profiles_summarise_each_segment() -> None:
    churn = np.array([0.1, 0.7, 0.9, 0.2, 0.95])
    vip, regular, lost = build_profiles(
        NAMES, VALUES, CLUSTERS, TABLE, churn_probability=churn, churn_threshold=0.6
    )
    assert (vip.segment, vip.name, vip.everyone.customers) == (Segment.VIP, "VIP", 2)
    assert vip.everyone.avg_basket_value == 40
    assert vip.everyone.avg_units_per_invoice == 8
    assert vip.everyone.units_per_line == pytest.approx(16 / 5)  # units over lines, pooled
    assert vip.category_affinity == {"home": 0.75, "toys": 0.25}
    assert vip.category_buyers["home"].customers == 2
    assert vip.category_buyers["toys"].customers == 1
    assert vip.category_buyers["toys"].avg_basket_value == 30
    assert vip.churn_risk is not None and vip.churn_risk.customers == 1
    assert vip.churn_threshold == 0.6
    assert regular.category_affinity == pytest.approx({"home": 0.1, "toys": 0.9})
    assert regular.churn_risk is not None and regular.churn_risk.customers == 1
    assert lost.everyone.customers == 1 and lost.everyone.avg_basket_value == 0
    assert lost.category_buyers["home"].customers == 0


def test_clusters_sharing_a_name_are_pooled_and_unknown_ones_kept() -> None:
    table = {0: (Segment.LOYAL, "Loyal"), 1: (Segment.LOYAL, "Loyal")}
    unnamed, loyal = build_profiles(NAMES, VALUES, CLUSTERS, table)  # by segment number
    assert loyal.everyone.customers == 4 and loyal.churn_risk is None
    assert (unnamed.segment, unnamed.name) == (Segment.UNSPECIFIED, "cluster 2")


def test_missing_features_are_named() -> None:
    with pytest.raises(KeyError, match="avg_basket_value"):
        build_profiles(["recency_days"], VALUES[:, :1], CLUSTERS, TABLE)


@pytest.mark.parametrize(
    ("ours", "proto", "prefix"),
    [
        (Status, campaign_pb2.InventoryStatus, "INVENTORY_STATUS_"),
        (Objective, campaign_pb2.CampaignObjective, "CAMPAIGN_OBJECTIVE_"),
        (Channel, campaign_pb2.Channel, "CHANNEL_"),
        (Segment, segmentation_pb2.Segment, "SEGMENT_"),
    ],
)
def test_domain_enums_match_the_protos(ours: type, proto: object, prefix: str) -> None:
    expected = {name.removeprefix(prefix): number for name, number in proto.items()}  # type: ignore[attr-defined]
    assert {m.name: m.value for m in ours} == expected  # type: ignore[attr-defined]

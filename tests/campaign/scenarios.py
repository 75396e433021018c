"""Hand-made inventories and segments whose right plans can be worked out on paper."""

from __future__ import annotations

from server.campaign.types import Audience, InventoryItem, Segment, SegmentProfile


def audience(
    customers: int, basket: float = 60.0, units: float = 20.0, per_line: float = 2.0
) -> Audience:
    return Audience(customers, basket, units, per_line)


def segment(
    kind: Segment,
    name: str,
    size: int,
    affinity: dict[str, float],
    buyers: dict[str, int],
    *,
    churn_risk: int | None = None,
) -> SegmentProfile:
    return SegmentProfile(
        segment=kind,
        name=name,
        everyone=audience(size),
        category_affinity=affinity,
        category_buyers={c: audience(n) for c, n in buyers.items()},
        churn_risk=audience(churn_risk) if churn_risk is not None else None,
        churn_threshold=0.6 if churn_risk is not None else None,
    )


LOYAL = segment(
    Segment.LOYAL,
    "Loyal",
    500,
    {"home": 0.4, "toys": 0.1},
    {"home": 300, "toys": 80},
    churn_risk=40,
)
REGULAR = segment(
    Segment.REGULAR, "Regular", 1000, {"home": 0.2, "toys": 0.3}, {"home": 600, "toys": 700}
)
AT_RISK = segment(
    Segment.AT_RISK, "At-Risk", 400, {"home": 0.1, "toys": 0.1}, {"home": 100, "toys": 100}
)
SEGMENTS = (LOYAL, REGULAR, AT_RISK)

# With daily demand 5 (dead: 0.01): OVER has 200 days of cover (overstock above 60), LOW has
# 12 days of cover but its 10 on hand last 2 days against a 14-day lead time, OK has 20 days.
OVER = InventoryItem("OVER", 1000, 4.0, 10.0, 0, 7, "home")
DEAD = InventoryItem("DEAD", 200, 3.0, 8.0, 0, 7, "toys")
LOW = InventoryItem("LOW", 10, 4.0, 10.0, 50, 14, "home")
OK = InventoryItem("OK", 100, 4.0, 10.0, 0, 7, "home")
ITEMS = (OVER, DEAD, LOW, OK)
DAILY = {"OVER": 5.0, "DEAD": 0.01, "LOW": 5.0, "OK": 5.0}

"""Domain types of campaign planning, free of protobuf so the planner is plain Python.

The enums carry the same numbers as their crm.v1 counterparts (checked by a test), so the
service converts with `Enum(value)` and `.value`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from crm.inventory import InventoryItem


class Status(IntEnum):
    UNSPECIFIED = 0  # no forecast for the product: not diagnosed, not planned
    STOCKOUT_RISK = 1
    HEALTHY = 2
    OVERSTOCK = 3
    DEAD_STOCK = 4


class Objective(IntEnum):
    UNSPECIFIED = 0
    CLEAR_OVERSTOCK = 1
    MOVE_DEAD_STOCK = 2
    PROTECT_STOCKOUT = 3
    WIN_BACK = 4
    RETAIN_HIGH_VALUE = 5


class Channel(IntEnum):
    UNSPECIFIED = 0
    EMAIL = 1
    SMS = 2
    WHATSAPP = 3

    @property
    def key(self) -> str:
        """Name used in the assumptions' contact-cost map and in templates: "email"."""
        return self.name.lower()


ALL_CHANNELS: tuple[Channel, ...] = (Channel.EMAIL, Channel.SMS, Channel.WHATSAPP)
# Objectives whose actions are advice for the merchant (Action.advisory), never a campaign.
ADVISORY_OBJECTIVES: frozenset[Objective] = frozenset({Objective.PROTECT_STOCKOUT})


class Segment(IntEnum):
    """crm.v1.Segment numbers; the planner targets some objectives at fixed segments."""

    UNSPECIFIED = 0
    VIP = 1
    LOYAL = 2
    REGULAR = 3
    NEW = 4
    AT_RISK = 5
    LOST = 6

    @classmethod
    def named(cls, name: str) -> Segment:
        """The segment a display name (as training names clusters) stands for."""
        return _SEGMENT_NAMES.get(name, cls.UNSPECIFIED)


_SEGMENT_NAMES = {
    "VIP": Segment.VIP,
    "Loyal": Segment.LOYAL,
    "Regular": Segment.REGULAR,
    "New": Segment.NEW,
    "At-Risk": Segment.AT_RISK,
    "Lost": Segment.LOST,
}


@dataclass(frozen=True)
class Position:
    """An inventory item diagnosed against its demand forecast."""

    item: InventoryItem
    forecast_daily_units: float  # mean over the plan horizon; 0 when unknown
    days_of_cover: float  # (stock + on order) / daily units; inf without demand
    on_hand_cover_days: float  # stock on hand / daily units; inf without demand
    status: Status


@dataclass(frozen=True)
class Audience:
    """A group of customers and what they typically buy."""

    customers: int
    avg_basket_value: float  # mean money per sale invoice
    avg_units_per_invoice: float
    units_per_line: float  # mean units of one product in one invoice


@dataclass(frozen=True)
class SegmentProfile:
    """One segment of the customer snapshot, as the planner needs it."""

    segment: Segment
    name: str  # display name from the segmentation manifest, e.g. "At-Risk"
    everyone: Audience
    category_affinity: dict[str, float]  # category -> mean share of the members' spend
    category_buyers: dict[str, Audience]  # category -> members who bought in it
    churn_risk: Audience | None  # members at or above the churn model's high-risk threshold
    churn_threshold: float | None


@dataclass(frozen=True)
class Action:
    """One line of a plan (money in the plan's currency)."""

    rank: int
    objective: Objective
    product_id: str
    category: str
    segment: Segment
    segment_name: str
    audience_size: int
    channel: Channel
    discount: float
    expected_extra_units: float
    expected_revenue: float
    expected_margin: float
    budget_used: float
    rationale: str
    # Advice for the merchant, not a campaign: no channel, audience, segment, discount or
    # budget (PROTECT_STOCKOUT). Customers get no message for it.
    advisory: bool = False

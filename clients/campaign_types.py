"""What the CampaignService calls take and give back, as plain dataclasses.

Enums travel as their short names ("CLEAR_OVERSTOCK", "EMAIL", "LOYAL"); money is in the plan's
`currency`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from clients.common import ModelRef, RowFailure


@dataclass(frozen=True)
class ProductForecast:
    product_id: str
    daily_units: tuple[float, ...]
    total_units: float
    error: RowFailure | None = None


@dataclass(frozen=True)
class Forecast:
    model: ModelRef
    start_date: date
    forecasts: tuple[ProductForecast, ...]


@dataclass(frozen=True)
class CampaignAction:
    rank: int
    objective: str  # "CLEAR_OVERSTOCK" | "MOVE_DEAD_STOCK" | "PROTECT_STOCKOUT" | ...
    product_id: str
    category: str
    target_segment: str  # "VIP" | "LOYAL" | ... | "UNSPECIFIED"
    target_segment_name: str
    audience_size: int
    channel: str  # "EMAIL" | "SMS" | "WHATSAPP" | "UNSPECIFIED"
    discount: float
    expected_extra_units: float
    expected_revenue: float
    expected_margin: float
    budget_used: float
    rationale: str
    # True: advice for the merchant (PROTECT_STOCKOUT), no channel, audience or budget.
    advisory: bool = False


@dataclass(frozen=True)
class ProductInventory:
    product_id: str
    category: str
    status: str  # "STOCKOUT_RISK" | "HEALTHY" | "OVERSTOCK" | "DEAD_STOCK" | "UNSPECIFIED"
    days_of_cover: float
    forecast_daily_units: float


@dataclass(frozen=True)
class UpliftAssumptions:
    price_elasticity_by_category: Mapping[str, float]
    response_rate_by_segment: Mapping[str, float]
    contact_cost_by_channel: Mapping[str, float]
    stockout_cover_days: float
    overstock_cover_days: float
    dead_stock_daily_units: float


@dataclass(frozen=True)
class Plan:
    actions: tuple[CampaignAction, ...]
    budget: float
    budget_used: float
    expected_margin: float
    currency: str
    algorithm: str
    assumptions: UpliftAssumptions
    inventory: tuple[ProductInventory, ...]
    models: tuple[ModelRef, ...]


@dataclass(frozen=True)
class MessageDraft:
    channel: str  # "EMAIL" | "SMS" | "WHATSAPP"
    subject: str
    body: str


@dataclass(frozen=True)
class Drafts:
    drafts: tuple[MessageDraft, ...]
    writer: str


@dataclass(frozen=True)
class SavedCampaign:
    id: str
    name: str
    created_at: datetime
    plan: Plan
    drafts: tuple[MessageDraft, ...]
    notes: str


@dataclass(frozen=True)
class CampaignPage:
    campaigns: tuple[SavedCampaign, ...]
    next_page_token: str  # "" when there are no more

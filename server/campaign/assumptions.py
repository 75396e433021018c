"""The uplift model's assumptions: documented defaults, optional JSON overrides, echoed in plans.

The planner predicts what a campaign adds with these numbers (see `planner` for the formulas):

  price_elasticity_by_category  relative change in units per relative price cut, by product
                                category; "*" is every other category and customer-wide
                                vouchers. 2.5 means a 10% discount lifts responders' units by
                                25%. Short-term promotional elasticities in retail are mostly
                                1.5..4 (higher for discretionary goods, lower for staples).
  response_rate_by_segment      fraction of a contacted audience that buys because of the
                                contact, at no discount, by segment display name; "*" is any
                                other segment. Defaults follow typical retail email/SMS
                                conversion (1..8%), higher for engaged segments.
  contact_cost_by_channel       money per message sent, by channel ("email", "sms",
                                "whatsapp"), in the data's currency (GBP by default).
  stockout_cover_days           days of cover at or below which a product is at stockout risk.
  overstock_cover_days          days of cover above which a product is overstocked.
  dead_stock_daily_units        forecast units per day at or below which stock is dead.
  max_actions_per_segment       contact pressure: at most this many actions (messages) per
                                customer segment in one plan (a plan covers up to 7 days).
                                Responses are modelled as independent, which only holds while
                                customers are not flooded; 2 a week is a common retail cadence.
                                Not an uplift number, so it is echoed in `algorithm` instead.

Overrides: a JSON object with any of these keys; maps are merged key by key over the defaults
(so `{"response_rate_by_segment": {"VIP": 0.1}}` changes one number). The server reads
`<data_dir>/campaign_assumptions.json` when it exists; a bad file stops start-up.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from server.campaign.types import Channel

ANY = "*"
ASSUMPTIONS_FILE = "campaign_assumptions.json"

DEFAULT_ELASTICITY: dict[str, float] = {
    "electronics": 2.0,
    "fashion": 3.0,
    "grocery": 1.5,
    "home": 2.5,
    "sports": 2.5,
    ANY: 2.0,
}
DEFAULT_RESPONSE_RATE: dict[str, float] = {
    "VIP": 0.08,
    "Loyal": 0.06,
    "Regular": 0.04,
    "New": 0.05,
    "At-Risk": 0.03,
    "Lost": 0.01,
    ANY: 0.03,
}
DEFAULT_CONTACT_COST: dict[str, float] = {"email": 0.002, "sms": 0.04, "whatsapp": 0.015}


@dataclass(frozen=True)
class Assumptions:
    price_elasticity_by_category: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_ELASTICITY)
    )
    response_rate_by_segment: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_RESPONSE_RATE)
    )
    contact_cost_by_channel: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_CONTACT_COST)
    )
    stockout_cover_days: float = 7.0
    overstock_cover_days: float = 60.0
    dead_stock_daily_units: float = 0.05
    max_actions_per_segment: int = 2

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ValueError("invalid campaign assumptions: " + "; ".join(problems))

    def elasticity(self, category: str) -> float:
        table = self.price_elasticity_by_category
        return float(table.get(category, table.get(ANY, 0.0)))

    def response_rate(self, segment_name: str) -> float:
        table = self.response_rate_by_segment
        return float(table.get(segment_name, table.get(ANY, 0.0)))

    def contact_cost(self, channel: Channel) -> float:
        return float(self.contact_cost_by_channel[channel.key])

    def merged(self, overrides: Mapping[str, Any]) -> Assumptions:
        """These assumptions with `overrides` applied (maps merged key by key)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown assumption(s): {', '.join(unknown)}")
        changes: dict[str, Any] = {}
        for name, value in overrides.items():
            current = getattr(self, name)
            if isinstance(current, Mapping):
                if not isinstance(value, Mapping):
                    raise ValueError(f"{name} must be an object of numbers")
                changes[name] = {**current, **{str(k): _number(v) for k, v in value.items()}}
            elif isinstance(current, int):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"{name} must be a whole number")
                changes[name] = value
            else:
                changes[name] = _number(value)
        return replace(self, **changes)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number")
    return float(value)


def _problems(a: Assumptions) -> list[str]:
    problems: list[str] = []
    for key, value in a.price_elasticity_by_category.items():
        if not (math.isfinite(value) and 0 <= value <= 20):
            problems.append(f"price_elasticity_by_category[{key!r}] must be 0..20")
    for key, value in a.response_rate_by_segment.items():
        if not (math.isfinite(value) and 0 <= value <= 1):
            problems.append(f"response_rate_by_segment[{key!r}] must be 0..1")
    missing = [c.key for c in Channel if c is not Channel.UNSPECIFIED]
    missing = [k for k in missing if k not in a.contact_cost_by_channel]
    if missing:
        problems.append(f"contact_cost_by_channel lacks {', '.join(missing)}")
    for key, value in a.contact_cost_by_channel.items():
        if not (math.isfinite(value) and value >= 0):
            problems.append(f"contact_cost_by_channel[{key!r}] must be >= 0")
    if not (math.isfinite(a.stockout_cover_days) and a.stockout_cover_days >= 0):
        problems.append("stockout_cover_days must be >= 0")
    if not (
        math.isfinite(a.overstock_cover_days) and a.overstock_cover_days > a.stockout_cover_days
    ):
        problems.append("overstock_cover_days must be above stockout_cover_days")
    if not (math.isfinite(a.dead_stock_daily_units) and a.dead_stock_daily_units >= 0):
        problems.append("dead_stock_daily_units must be >= 0")
    if a.max_actions_per_segment < 1:
        problems.append("max_actions_per_segment must be >= 1")
    return problems


def load_assumptions(path: Path) -> Assumptions:
    """Defaults, overridden by the JSON file at `path` when it exists."""
    defaults = Assumptions()
    if not path.is_file():
        return defaults
    try:
        overrides = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: cannot read campaign assumptions ({err})") from None
    if not isinstance(overrides, dict):
        raise ValueError(f"{path}: campaign assumptions must be a JSON object")
    try:
        return defaults.merged(overrides)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None

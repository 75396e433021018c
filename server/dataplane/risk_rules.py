"""Risk levels and the recommendation rule table.

Risk level from the calibrated probability p and thresholds (t_medium, t_high, t_critical),
taken from the model manifest (`serving.risk_thresholds`, parsed by `server.models.specs`):
    p <  t_medium -> LOW;  p < t_high -> MEDIUM;  p < t_critical -> HIGH;  else CRITICAL.

Recommendations (codes are stable; "high value" = net spend in the top RFM quintile):
    LOW       LOYALTY_POINTS                    keep rewarding purchases
    MEDIUM    REENGAGEMENT_EMAIL                personalised picks from favourite categories
    HIGH      REENGAGEMENT_EMAIL, LOYALTY_BONUS double points on the next order
    CRITICAL  WIN_BACK_DISCOUNT                 time-limited discount on the next order
    HIGH/CRITICAL and high value: + PERSONAL_ACCOUNT_MANAGER (a call from a named contact)
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from crm.v1 import churn_pb2

LEVELS = (
    churn_pb2.RISK_LEVEL_LOW,
    churn_pb2.RISK_LEVEL_MEDIUM,
    churn_pb2.RISK_LEVEL_HIGH,
    churn_pb2.RISK_LEVEL_CRITICAL,
)
_LEVEL_ARRAY = np.asarray(LEVELS, dtype=np.int64)

_TEXT = {
    "LOYALTY_POINTS": "Keep rewarding purchases with loyalty points.",
    "REENGAGEMENT_EMAIL": "Send a re-engagement email with picks from their favourite categories.",
    "LOYALTY_BONUS": "Offer double loyalty points on the next order.",
    "WIN_BACK_DISCOUNT": "Offer a time-limited win-back discount on the next order.",
    "PERSONAL_ACCOUNT_MANAGER": "Have a personal account manager call this high-value customer.",
}
_BY_LEVEL = {
    churn_pb2.RISK_LEVEL_LOW: ("LOYALTY_POINTS",),
    churn_pb2.RISK_LEVEL_MEDIUM: ("REENGAGEMENT_EMAIL",),
    churn_pb2.RISK_LEVEL_HIGH: ("REENGAGEMENT_EMAIL", "LOYALTY_BONUS"),
    churn_pb2.RISK_LEVEL_CRITICAL: ("WIN_BACK_DISCOUNT",),
}
RECOMMENDATIONS = {
    code: churn_pb2.Recommendation(code=code, text=text) for code, text in _TEXT.items()
}


def risk_levels(probabilities: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """RiskLevel enum values, vectorised."""
    return _LEVEL_ARRAY[_edges(tuple(thresholds)).searchsorted(probabilities, side="right")]


@functools.lru_cache(maxsize=16)
def _edges(thresholds: tuple[float, ...]) -> np.ndarray:
    """The thresholds as an array, made once per model (np.searchsorted would convert the
    tuple on every call)."""
    return np.asarray(thresholds, dtype=np.float64)


@functools.cache
def recommendations(level: int, high_value: bool) -> tuple[churn_pb2.Recommendation, ...]:
    """The rule table's answer; shared, read-only messages (callers copy them into replies)."""
    codes = list(_BY_LEVEL[level])
    if high_value and level in (churn_pb2.RISK_LEVEL_HIGH, churn_pb2.RISK_LEVEL_CRITICAL):
        codes.append("PERSONAL_ACCOUNT_MANAGER")
    return tuple(RECOMMENDATIONS[c] for c in codes)

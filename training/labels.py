"""Rolling cutoffs and the labels that follow them.

At a cutoff c a customer's features use lines with InvoiceDate < c and the label uses lines in
the window [c, c + horizon). The validation cutoff is the latest whose window fits the data
(end - horizon). Two sets of fit cutoffs step back from there every `step_days`:
  - `fit`: the validation stage. Every window ends at or before the validation cutoff, so
    nothing the validated model or its calibration saw comes from the validation label window.
  - `refit`: the exported model. The validated configuration is fitted again on cutoffs up to
    and including the validation cutoff, so its newest labels end where the data ends.
Probability calibration is cross-fitted on the fit cutoffs themselves (no held-back horizon),
so the shortest usable span is two horizons plus `min_history_days` (see `min_span_days`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm.features import SECONDS_PER_DAY, LineArrays, timestamp_seconds

MIN_HISTORY_DAYS = 60


def min_span_days(horizon_days: int, min_history_days: int = MIN_HISTORY_DAYS) -> int:
    """Days of data a horizon needs: history before the first fit cutoff, one fit window and
    the validation window (e.g. 30 -> 120, 90 -> 240, 92 -> 244)."""
    return 2 * horizon_days + min_history_days


@dataclass(frozen=True)
class CutoffPlan:
    horizon_days: int
    fit: tuple[pd.Timestamp, ...]
    validation: pd.Timestamp
    refit: tuple[pd.Timestamp, ...] = ()

    def windows(self) -> list[tuple[str, pd.Timestamp, pd.Timestamp]]:
        """(role, cutoff, window end) of the validation stage, oldest first."""
        span = pd.Timedelta(days=self.horizon_days)
        roles = [("fit", c) for c in self.fit] + [("validation", self.validation)]
        return [(role, c, c + span) for role, c in roles]

    def as_manifest(self) -> dict[str, object]:
        return {
            "horizon_days": self.horizon_days,
            "fit": [c.isoformat() for c in self.fit],
            "validation": self.validation.isoformat(),
            "refit": [c.isoformat() for c in self.refit],
            "calibration": "cross-fitted on the fit cutoffs (customer folds)",
        }


class DataTooShortError(ValueError):
    """The data does not span enough days for the requested horizon and history."""


def plan_cutoffs(
    start: pd.Timestamp,
    end: pd.Timestamp,
    horizon_days: int,
    *,
    step_days: int = 30,
    n_fit: int = 6,
    min_history_days: int = MIN_HISTORY_DAYS,
) -> CutoffPlan:
    """Cutoffs at midnights; `end` is exclusive (the as-of time of the data)."""
    span = pd.Timedelta(days=horizon_days)
    validation = pd.Timestamp(end).normalize() - span
    earliest = pd.Timestamp(start).normalize() + pd.Timedelta(days=min_history_days)

    def back_from(last: pd.Timestamp) -> tuple[pd.Timestamp, ...]:
        cutoffs = [last - pd.Timedelta(days=step_days * k) for k in range(n_fit)]
        return tuple(sorted(c for c in cutoffs if c >= earliest))

    fit = back_from(validation - span)
    if not fit:
        need = min_span_days(horizon_days, min_history_days)
        raise DataTooShortError(
            f"{(end - start).days} days of data are too few for a {horizon_days}-day horizon: "
            f"need at least {need} (2 x {horizon_days} days for a fit and a validation window "
            f"+ {min_history_days} days of history before the first cutoff)"
        )
    return CutoffPlan(horizon_days, fit, validation, back_from(validation))


@dataclass(frozen=True)
class WindowLabels:
    """What each customer did inside one label window."""

    customer_ids: np.ndarray
    purchased: np.ndarray
    spend: np.ndarray
    spend_by_category: np.ndarray


def window_labels(
    lines: pd.DataFrame | LineArrays,
    cutoff: pd.Timestamp,
    horizon_days: int,
    customer_ids: np.ndarray,
    categories: Sequence[str],
) -> WindowLabels:
    """Sale invoices and gross sales of the given customers in [cutoff, cutoff + horizon)."""
    arrays = lines if isinstance(lines, LineArrays) else LineArrays(lines)
    start = timestamp_seconds(cutoff)
    stop = start + horizon_days * SECONDS_PER_DAY
    inside = np.flatnonzero((arrays.t >= start) & (arrays.t < stop) & ~arrays.ret)
    who = pd.Index(customer_ids).get_indexer(arrays.customer_ids[inside])
    known = who >= 0
    who, rows = who[known], inside[known]
    amount = arrays.amount[rows]
    n = len(customer_ids)
    purchased = np.bincount(who, minlength=n) > 0
    spend = np.bincount(who, weights=amount, minlength=n)
    category = arrays.category[rows]
    by_category = np.zeros((n, len(categories)))
    for j, name in enumerate(categories):
        in_category = category == arrays.category_code.get(name, -1)
        by_category[:, j] = np.bincount(who[in_category], weights=amount[in_category], minlength=n)
    return WindowLabels(np.asarray(customer_ids), purchased, spend, by_category)

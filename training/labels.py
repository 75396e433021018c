"""Rolling cutoffs and the labels that follow them.

At a cutoff c a customer's features use lines with InvoiceDate < c and the label uses lines in
the window [c, c + horizon). The validation cutoff is the latest whose window fits the data;
the calibration cutoff's window ends where validation begins, and fit cutoffs step back from
the calibration one. Fit and calibration windows may overlap each other (rolling windows do),
but every one of them ends at or before the validation cutoff, so nothing the model or its
calibration saw comes from the validation label window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm.features import SECONDS_PER_DAY, LineArrays, timestamp_seconds


@dataclass(frozen=True)
class CutoffPlan:
    horizon_days: int
    fit: tuple[pd.Timestamp, ...]
    calibration: pd.Timestamp
    validation: pd.Timestamp

    def windows(self) -> list[tuple[str, pd.Timestamp, pd.Timestamp]]:
        """(role, cutoff, window end) for every cutoff, oldest first."""
        span = pd.Timedelta(days=self.horizon_days)
        roles = [("fit", c) for c in self.fit]
        roles += [("calibration", self.calibration), ("validation", self.validation)]
        return [(role, c, c + span) for role, c in roles]

    def as_manifest(self) -> dict[str, object]:
        return {
            "horizon_days": self.horizon_days,
            "fit": [c.isoformat() for c in self.fit],
            "calibration": self.calibration.isoformat(),
            "validation": self.validation.isoformat(),
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
    min_history_days: int = 60,
) -> CutoffPlan:
    """Cutoffs at midnights; `end` is exclusive (the as-of time of the data)."""
    span = pd.Timedelta(days=horizon_days)
    validation = pd.Timestamp(end).normalize() - span
    calibration = validation - span
    earliest = pd.Timestamp(start).normalize() + pd.Timedelta(days=min_history_days)
    fit = [calibration - pd.Timedelta(days=step_days * k) for k in range(1, n_fit + 1)]
    fit = [c for c in fit if c >= earliest]
    if not fit:
        need = 2 * horizon_days + step_days + min_history_days
        raise DataTooShortError(
            f"{(end - start).days} days of data are too few for a {horizon_days}-day horizon: "
            f"need at least {need}"
        )
    return CutoffPlan(horizon_days, tuple(sorted(fit)), calibration, validation)


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

"""Demand rows from a hand-made product history, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from crm.demand import HISTORY_DAYS, demand_feature_names, demand_rows

CATEGORIES = ["grocery", "home"]
ORIGIN = np.datetime64("2024-03-04")  # a Monday


def _rows(history: np.ndarray, horizon: int = 7) -> list[dict[str, float]]:
    rows = demand_rows(history, ORIGIN, [2.5], ["home"], CATEGORIES, horizon)
    names = demand_feature_names(CATEGORIES)
    assert rows.dtype == np.float32 and rows.shape == (horizon, len(names))
    return [dict(zip(names, r.tolist(), strict=True)) for r in rows]


def test_hand_made_history() -> None:
    history = np.arange(1, 15, dtype=float)[None, :]  # 14 days before the origin: 1 .. 14
    day1, _, day3, *_ = _rows(history)
    assert day1["horizon_day"] == 1 and day1["day_of_week"] == 0 and day1["is_weekend"] == 0
    assert day1["month"] == 3
    assert day1["lag_same_weekday_1w"] == 8  # the Monday a week before
    assert day1["lag_same_weekday_2w"] == 1  # two weeks before: the oldest day given
    assert day1["lag_same_weekday_3w"] == 0  # before the history: zero padding
    assert day1["mean_same_weekday_8w"] == pytest.approx((8 + 1) / 8)
    assert day1["last_day_units"] == 14
    assert day1["mean_7d"] == pytest.approx(11)
    assert day1["mean_14d"] == pytest.approx(7.5)
    assert day1["mean_28d"] == pytest.approx(105 / 28)
    assert day1["mean_56d"] == pytest.approx(105 / 56)
    assert day1["zero_share_28d"] == pytest.approx(0.5)
    assert day1["days_since_last_sale"] == 1
    assert day1["trend_7d_28d"] == pytest.approx((11 - 105 / 28) / (11 + 105 / 28 + 1))
    assert day1["std_28d"] == pytest.approx(np.concatenate([np.zeros(14), history[0]]).std())
    assert day1["unit_price"] == 2.5
    assert (day1["cat__grocery"], day1["cat__home"]) == (0, 1)
    day_of_year = 31 + 29 + 4 - 1  # 2024-03-04 is day 64; the feature counts from 0
    assert day1["day_of_year_sin"] == pytest.approx(np.sin(2 * np.pi * day_of_year / 365.25))
    assert day3["day_of_week"] == 2  # Wednesday
    assert day3["lag_same_weekday_1w"] == 10  # Wednesday a week before (5 days before origin)


def test_days_since_last_sale_and_padding() -> None:
    history = np.zeros((1, 70))
    history[0, -10] = 3  # last sale 10 days before the origin; older days are cut to 56
    (day1,) = _rows(history, horizon=1)
    assert day1["days_since_last_sale"] == 10
    assert day1["mean_56d"] == pytest.approx(3 / HISTORY_DAYS)
    (never,) = _rows(np.zeros((1, 5)), horizon=1)
    assert never["days_since_last_sale"] == HISTORY_DAYS + 1


def test_rows_are_product_major_and_validated() -> None:
    history = np.array([[0.0] * 55 + [1.0], [0.0] * 55 + [2.0]])
    rows = demand_rows(history, ORIGIN, [1.0, 2.0], ["home", "grocery"], CATEGORIES, 3)
    last = demand_feature_names(CATEGORIES).index("last_day_units")
    assert rows[:, last].tolist() == [1, 1, 1, 2, 2, 2]
    with pytest.raises(ValueError, match="horizon"):
        demand_rows(history, ORIGIN, [1.0, 2.0], ["home", "grocery"], CATEGORIES, 8)
    with pytest.raises(ValueError, match="same products"):
        demand_rows(history, ORIGIN, [1.0], ["home", "grocery"], CATEGORIES, 1)

"""Customer features on a hand-made history, every value worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from crm.features import (
    FeatureInputError,
    customer_feature_matrix,
    feature_names,
    rfm_scores,
)
from tests.training.helpers import lines_frame

CATEGORIES = ["electronics", "grocery", "home"]
AS_OF = pd.Timestamp("2024-03-01 00:00:00")  # a Friday; 2024 is a leap year
ROWS = [
    # invoice 1, Monday 2024-01-01 10:00: 2 x 5.00 electronics + 1 x 20.00 home = 30
    ("1", "P1", 2, "2024-01-01 10:00", 5.0, "A", "electronics"),
    ("1", "P2", 1, "2024-01-01 10:00", 20.0, "A", "home"),
    # invoice 2, Wednesday 2024-01-31 12:00: 4 x 5.00 electronics = 20
    ("2", "P1", 4, "2024-01-31 12:00", 5.0, "A", "electronics"),
    # invoice 3, Saturday 2024-02-24 09:00: 10 x 1.00 grocery + 1 x 20.00 home = 30
    ("3", "P3", 10, "2024-02-24 09:00", 1.0, "A", "grocery"),
    ("3", "P2", 1, "2024-02-24 09:00", 20.0, "A", "home"),
    # return of one P2 (20.00), Monday 2024-02-26 10:00
    ("C4", "P2", -1, "2024-02-26 10:00", 20.0, "A", "home"),
    # on and after as_of: must be ignored
    ("5", "P1", 100, "2024-03-01 00:00", 5.0, "A", "electronics"),
    ("6", "P1", 100, "2024-03-02 09:00", 5.0, "A", "electronics"),
    # customer B only ever returned something, 2024-02-01 00:00
    ("C7", "P3", -3, "2024-02-01 00:00", 1.0, "B", "grocery"),
]

AGE_1 = 60 - 10 / 24  # invoice 1: 59.5833 days before as_of
AGE_2 = 30 - 12 / 24  # 29.5
AGE_3 = 6 - 9 / 24  # 5.625
SPAN = AGE_1 - AGE_3
GAPS = np.array([AGE_1 - AGE_2, AGE_2 - AGE_3])
SEASON = 2 * math.pi * 60 / 365.25  # 1 March 2024 is day 61 of the year

EXPECTED_A = {
    "recency_days": AGE_3,
    "frequency": 3,
    "monetary": 80 - 20,
    "gross_spend": 80,
    "avg_basket_value": 80 / 3,
    "max_basket_value": 30,
    "avg_lines_per_invoice": 5 / 3,
    "avg_units_per_invoice": 18 / 3,
    "avg_unit_price": 80 / 18,
    "unique_products": 3,
    "avg_interpurchase_days": SPAN / 2,
    "std_interpurchase_days": float(np.std(GAPS, ddof=1)),
    "max_gap_days": AGE_1 - AGE_2,
    "purchase_span_days": SPAN,
    "tenure_days": AGE_1,
    "recency_cycle_ratio": AGE_3 / (SPAN / 2),
    "return_rate": 20 / 80,
    "return_invoices": 1,
    "spend_7d": 30,
    "spend_30d": 50,
    "spend_90d": 80,
    "spend_180d": 80,
    "spend_365d": 80,
    "txn_7d": 1,
    "txn_30d": 2,
    "txn_90d": 3,
    "txn_180d": 3,
    "txn_365d": 3,
    "spend_trend_30d": (50 - 30) / (50 + 30 + 1),
    "spend_trend_90d": 80 / 81,
    "txn_trend_90d": 3 / 4,
    "active_months_365d": 2,  # twelfths 0 (invoices 2, 3) and 1 (invoice 1)
    "weekend_share": 1 / 3,
    "as_of_season_sin": math.sin(SEASON),
    "as_of_season_cos": math.cos(SEASON),
    "cat_share__electronics": 30 / 80,
    "cat_share__grocery": 10 / 80,
    "cat_share__home": 40 / 80,
}


def _features() -> dict[str, dict[str, float]]:
    names = feature_names(CATEGORIES)
    ids, matrix = customer_feature_matrix(lines_frame(ROWS), AS_OF, names)
    assert matrix.dtype == np.float32
    return {
        cid: dict(zip(names, row.tolist(), strict=True))
        for cid, row in zip(ids, matrix, strict=True)
    }


def test_every_feature_of_a_hand_made_customer() -> None:
    got = _features()["A"]
    assert set(got) == set(EXPECTED_A)
    for name, value in EXPECTED_A.items():
        assert got[name] == pytest.approx(value, rel=1e-5, abs=1e-5), name


def test_a_customer_with_only_returns() -> None:
    got = _features()["B"]
    assert got["frequency"] == 0
    assert got["recency_days"] == pytest.approx(29.0)
    assert got["tenure_days"] == pytest.approx(29.0)
    assert got["monetary"] == pytest.approx(-3.0)
    assert got["gross_spend"] == 0
    assert got["return_rate"] == 0
    assert got["return_invoices"] == 1
    assert got["spend_365d"] == 0


def test_order_follows_the_requested_names_and_unknown_names_fail() -> None:
    names = ["frequency", "cat_share__home", "recency_days"]
    ids, matrix = customer_feature_matrix(lines_frame(ROWS), AS_OF, names)
    assert ids == ["A", "B"]
    assert matrix[0].tolist() == pytest.approx([3, 0.5, AGE_3], rel=1e-6)
    with pytest.raises(FeatureInputError) as err:
        customer_feature_matrix(lines_frame(ROWS), AS_OF, ["frequency", "shoe_size"])
    assert err.value.field == "features"


def test_timezone_aware_as_of_is_utc() -> None:
    names = feature_names(CATEGORIES)
    naive = customer_feature_matrix(lines_frame(ROWS), AS_OF, names)[1]
    aware = customer_feature_matrix(
        lines_frame(ROWS), pd.Timestamp("2024-03-01 01:00:00+01:00"), names
    )[1]
    np.testing.assert_array_equal(naive, aware)


def test_missing_category_uses_the_mapping_then_other() -> None:
    frame = lines_frame(ROWS).drop(columns=["Category"])
    names = feature_names(CATEGORIES)
    _, mapped = customer_feature_matrix(frame, AS_OF, names, {"P1": "electronics", "P2": "home"})
    home = names.index("cat_share__home")
    grocery = names.index("cat_share__grocery")
    assert mapped[0, home] == pytest.approx(0.5)
    assert mapped[0, grocery] == 0  # P3 unmapped -> "other", in no listed category


def test_bad_lines_name_the_column() -> None:
    frame = lines_frame(ROWS)
    frame.loc[2, "Quantity"] = float("nan")
    with pytest.raises(FeatureInputError) as err:
        customer_feature_matrix(frame, AS_OF, feature_names(CATEGORIES))
    assert err.value.field == "Quantity"
    with pytest.raises(FeatureInputError) as err:
        customer_feature_matrix(
            lines_frame(ROWS).drop(columns=["Price"]), AS_OF, feature_names(CATEGORIES)
        )
    assert err.value.field == "Price"


def test_rfm_scores_from_edges() -> None:
    edges = {
        "recency_days": [10, 20, 30, 40],
        "frequency": [1, 2, 3, 4],
        "monetary": [100, 200, 300, 400],
    }
    r, f, m = rfm_scores(
        np.array([5, 10, 25, 45]), np.array([1, 2, 5, 3.5]), np.array([50, 250, 400, 1e6]), edges
    )
    assert r.tolist() == [5, 5, 3, 1]  # recent is good; a value on an edge takes the lower bin
    assert f.tolist() == [1, 2, 5, 4]
    assert m.tolist() == [1, 3, 4, 5]

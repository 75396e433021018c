"""Invoice-line features for the revenue model, on hand-made lines."""

from __future__ import annotations

import numpy as np
import pytest

from crm.line_features import line_feature_matrix, line_feature_names
from tests.training.helpers import lines_frame

CATEGORIES = ["electronics", "home"]


def test_hand_made_lines() -> None:
    frame = lines_frame(
        [
            ("10", "A", 2, "2024-03-02 14:30", 5.0, "1", "electronics"),  # Saturday
            ("10", "B", 3, "2024-03-02 14:30", 10.0, "1", "home"),
            ("", "C", 1, "2024-03-04 09:00", 4.0, "2", "home"),  # no invoice: stands alone
        ]
    )
    names = line_feature_names(CATEGORIES)
    matrix = line_feature_matrix(frame, CATEGORIES)
    assert matrix.dtype == np.float32 and matrix.shape == (3, len(names))
    first = dict(zip(names, matrix[0].tolist(), strict=True))
    assert first["quantity"] == 2 and first["unit_price"] == 5 and first["gross_revenue"] == 10
    assert first["log_gross_revenue"] == pytest.approx(np.log1p(10))
    assert first["hour"] == pytest.approx(14.5)
    assert (first["day_of_week"], first["is_weekend"], first["month"]) == (5, 1, 3)
    assert (first["invoice_lines"], first["invoice_gross"]) == (2, 40)
    assert first["share_of_invoice"] == pytest.approx(0.25)
    assert (first["cat__electronics"], first["cat__home"]) == (1, 0)
    alone = dict(zip(names, matrix[2].tolist(), strict=True))
    assert (alone["invoice_lines"], alone["invoice_gross"], alone["share_of_invoice"]) == (1, 4, 1)
    assert alone["day_of_week"] == 0 and alone["is_weekend"] == 0

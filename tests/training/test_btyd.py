"""Our scipy BG/NBD and Gamma-Gamma against `lifetimes` (an established implementation) on the
apparel export: same inputs, the same fitted parameters and predictions.

The inputs (x, t_x, T in days, mean spend of repeat purchase days) are built here with pandas:
`lifetimes.utils.summary_data_from_transaction_data` does not work with pandas 3, but its
fitters do.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter, GammaGammaFitter

from tests.training.test_shapes import APPAREL
from training.btyd import fit_bgnbd, fit_gamma_gamma

END = pd.Timestamp("2008-12-31")


@pytest.fixture(scope="module")
def summary() -> pd.DataFrame:
    lines = pd.read_csv(APPAREL, parse_dates=["InvoiceDate"])
    lines = lines.loc[lines["InvoiceDate"] < END]
    daily = (
        lines.assign(day=lines["InvoiceDate"].dt.normalize())
        .groupby(["Customer ID", "day"])["Price"]
        .sum()
        .reset_index()
    )
    by = daily.groupby("Customer ID")["day"]
    first = by.transform("min")
    out = pd.DataFrame(
        {
            "x": by.size() - 1,
            "t_x": (by.max() - by.min()).dt.days,
            "T": (END - by.min()).dt.days,
        }
    ).astype(float)
    repeat = daily.loc[daily["day"] > first].groupby("Customer ID")["Price"].mean()
    out["m"] = repeat.reindex(out.index).fillna(0.0)
    assert len(out) == 600 and (out["x"] > 0).sum() > 300
    return out


def test_bgnbd_matches_lifetimes(summary: pd.DataFrame) -> None:
    x, t_x, big_t = (summary[c].to_numpy() for c in ("x", "t_x", "T"))
    reference = BetaGeoFitter().fit(summary["x"], summary["t_x"], summary["T"])
    ours = fit_bgnbd(x, t_x, big_t)
    for name, value in ours.as_dict().items():
        assert value == pytest.approx(reference.params_[name], rel=1e-3), name
    for t in (30.0, 92.0):
        expected = reference.conditional_expected_number_of_purchases_up_to_time(
            t, summary["x"], summary["t_x"], summary["T"]
        )
        np.testing.assert_allclose(
            ours.expected_purchases(t, x, t_x, big_t), expected, rtol=1e-3, atol=1e-6
        )
    alive = reference.conditional_probability_alive(summary["x"], summary["t_x"], summary["T"])
    np.testing.assert_allclose(ours.p_alive(x, t_x, big_t), alive, rtol=1e-3, atol=1e-6)
    # P(no purchase in t) against lifetimes' own P(X(t) = 0) for a customer alive or not:
    # 1 - P(alive) + P(alive) * P(no Poisson event in t | alive)
    quiet = (
        (reference.params_["alpha"] + big_t) / (reference.params_["alpha"] + big_t + 92.0)
    ) ** (reference.params_["r"] + x)
    np.testing.assert_allclose(
        ours.p_no_purchase(92.0, x, t_x, big_t), 1 - alive + alive * quiet, rtol=1e-3, atol=1e-6
    )


def test_gamma_gamma_matches_lifetimes(summary: pd.DataFrame) -> None:
    repeat = summary.loc[(summary["x"] > 0) & (summary["m"] > 0)]
    reference = GammaGammaFitter().fit(repeat["x"], repeat["m"])
    ours = fit_gamma_gamma(summary["x"].to_numpy(), summary["m"].to_numpy())
    for name, value in ours.as_dict().items():
        assert value == pytest.approx(reference.params_[name], rel=1e-3), name
    expected = reference.conditional_expected_average_profit(repeat["x"], repeat["m"])
    np.testing.assert_allclose(
        ours.expected_spend(repeat["x"].to_numpy(), repeat["m"].to_numpy()), expected, rtol=1e-4
    )

"""Cutoffs and labels: no label window overlaps the features it is paired with, nor validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm.features import prepare_lines, timestamp_seconds
from training.cleaning import clean
from training.labels import DataTooShortError, min_span_days, plan_cutoffs, window_labels
from training.observations import FeatureStore
from training.synthetic import SyntheticConfig, generate

START = pd.Timestamp("2023-01-02")
END = pd.Timestamp("2025-01-01")


@pytest.fixture(scope="module")
def prepared() -> pd.DataFrame:
    lines = generate(SyntheticConfig(customers=400, days=500, seed=3)).lines
    lines = lines.assign(InvoiceDate=pd.to_datetime(lines["InvoiceDate"]))
    lines["Customer ID"] = lines["Customer ID"].astype(str)
    return prepare_lines(clean(lines)[0])


@pytest.mark.parametrize("horizon", [7, 30, 90])
def test_no_fit_window_reaches_into_validation(horizon: int) -> None:
    plan = plan_cutoffs(START, END, horizon, n_fit=12)
    windows = plan.windows()
    assert [w[0] for w in windows] == ["fit"] * len(plan.fit) + ["validation"]
    cutoffs = [w[1] for w in windows]
    assert cutoffs == sorted(cutoffs) and len(set(cutoffs)) == len(cutoffs)
    for role, cutoff, end in windows:
        assert end - cutoff == pd.Timedelta(days=horizon)
        if role != "validation":
            assert end <= plan.validation, (role, cutoff)
    assert windows[-1][2] == END  # the latest fully observed window
    assert plan.fit[0] >= START + pd.Timedelta(days=60)
    # the exported model is refitted on cutoffs up to the validation one: fresh labels
    assert plan.refit[-1] == plan.validation
    assert plan.refit[-1] + pd.Timedelta(days=horizon) == END
    assert all(c >= START + pd.Timedelta(days=60) for c in plan.refit)


def test_too_short_data_is_refused() -> None:
    with pytest.raises(DataTooShortError, match="need at least 240"):
        plan_cutoffs(START, START + pd.Timedelta(days=200), 90)


@pytest.mark.parametrize("horizon", [30, 90, 92])
def test_minimum_span_is_enough_and_one_day_less_is_not(horizon: int) -> None:
    need = min_span_days(horizon)
    plan = plan_cutoffs(START, START + pd.Timedelta(days=need), horizon)
    assert len(plan.fit) == 1 and plan.refit[-1] == plan.validation
    with pytest.raises(DataTooShortError, match=f"need at least {need}"):
        plan_cutoffs(START, START + pd.Timedelta(days=need - 1), horizon)


def test_quarterly_churn_trains_on_273_days() -> None:
    plan = plan_cutoffs(START, START + pd.Timedelta(days=273), 92)
    assert plan.validation == START + pd.Timedelta(days=273 - 92)
    assert len(plan.refit) > len(plan.fit)


def test_features_ignore_everything_from_the_cutoff_on(prepared: pd.DataFrame) -> None:
    cutoff = pd.Timestamp("2023-11-01")
    before = prepared["_t"].to_numpy() < timestamp_seconds(cutoff)
    assert (~before).sum() > 1000  # plenty of label-window lines to leak, if it could
    categories = sorted(prepared["Category"].unique())
    full_ids, full = FeatureStore(prepared, categories).at(cutoff)
    cut_ids, cut = FeatureStore(prepared.loc[before], categories).at(cutoff)
    np.testing.assert_array_equal(full_ids, cut_ids)
    np.testing.assert_array_equal(full, cut)


def test_labels_ignore_everything_before_the_cutoff(prepared: pd.DataFrame) -> None:
    cutoff = pd.Timestamp("2023-11-01")
    categories = sorted(prepared["Category"].unique())
    ids = np.array(sorted(prepared["Customer ID"].unique()), dtype=object)
    t = prepared["_t"].to_numpy()
    after = t >= timestamp_seconds(cutoff)
    full = window_labels(prepared, cutoff, 30, ids, categories)
    only_after = window_labels(prepared.loc[after], cutoff, 30, ids, categories)
    np.testing.assert_array_equal(full.purchased, only_after.purchased)
    np.testing.assert_array_equal(full.spend, only_after.spend)
    np.testing.assert_array_equal(full.spend_by_category, only_after.spend_by_category)
    assert full.purchased.any() and (~full.purchased).any()
    np.testing.assert_allclose(full.spend_by_category.sum(axis=1), full.spend, rtol=1e-9)


def test_labels_cover_exactly_the_window(prepared: pd.DataFrame) -> None:
    cutoff = pd.Timestamp("2023-11-01")
    ids = np.array(sorted(prepared["Customer ID"].unique()), dtype=object)
    t = prepared["_t"].to_numpy()
    start, stop = timestamp_seconds(cutoff), timestamp_seconds(cutoff + pd.Timedelta(days=30))
    inside = prepared.loc[(t >= start) & (t < stop) & ~prepared["_ret"].to_numpy()]
    expected = inside.groupby("Customer ID")["_amount"].sum()
    labels = window_labels(prepared, cutoff, 30, ids, [])
    got = pd.Series(labels.spend, index=ids)
    np.testing.assert_allclose(got.loc[expected.index], expected.to_numpy())
    assert (got.drop(expected.index) == 0).all()
    assert set(ids[labels.purchased]) == set(expected.index)


def test_observations_pair_features_before_with_labels_after(prepared: pd.DataFrame) -> None:
    store = FeatureStore(prepared, sorted(prepared["Category"].unique()))
    cutoffs = [pd.Timestamp("2023-09-01"), pd.Timestamp("2023-10-01")]
    obs = store.observations(cutoffs, 30)
    assert set(obs.cutoff.astype("datetime64[s]").tolist()) == {c.to_pydatetime() for c in cutoffs}
    frequency = store.names.index("frequency")
    assert (obs.features[:, frequency] >= 1).all()  # only customers who had bought before
    recency = obs.features[:, store.names.index("recency_days")]
    assert (recency > 0).all()  # the last purchase is strictly before the cutoff

"""ScoreStats queues scores and folds them in bulk: the counts must not depend on when."""

from __future__ import annotations

import weakref

import numpy as np

from crm.artifacts import DEFAULT_RISK_THRESHOLDS as DEFAULT_THRESHOLDS
from crm.v1 import churn_pb2
from server.dataplane.risk_rules import risk_levels
from server.dataplane.score_stats import EDGES, ScoreStats


def test_counts_equal_a_direct_count_whenever_they_are_folded() -> None:
    rng = np.random.default_rng(3)
    calls = [
        rng.random(int(rng.integers(1, 5))) for _ in range(3 * ScoreStats.FOLD_AFTER_CALLS + 7)
    ]
    stats = ScoreStats()
    for i, probs in enumerate(calls):
        stats.add(probs, risk_levels(probs, DEFAULT_THRESHOLDS))
        if i == 100:
            assert stats.to_message().scored == sum(len(c) for c in calls[:101])
    stats.add(np.zeros(0), np.zeros(0, dtype=np.int64))  # nothing scored: nothing counted
    message = stats.to_message()
    everything = np.concatenate(calls)
    levels = risk_levels(everything, DEFAULT_THRESHOLDS)
    assert message.scored == everything.size
    assert abs(message.mean_probability - everything.mean()) < 1e-12
    by_level = {c.risk_level: c.count for c in message.by_risk_level}
    for level in (churn_pb2.RISK_LEVEL_LOW, churn_pb2.RISK_LEVEL_CRITICAL):
        assert by_level[level] == int((levels == level).sum())
    expected = np.bincount(np.minimum(np.searchsorted(EDGES, everything), 9), minlength=10)
    assert [b.count for b in message.distribution] == expected.tolist()


def test_big_calls_are_folded_by_rows_not_left_queued() -> None:
    """A few calls of many rows must not stay queued until the call bound: their arrays are
    released once their rows pass FOLD_AFTER_ROWS, and still counted."""
    rng = np.random.default_rng(5)
    calls = 4
    rows = ScoreStats.FOLD_AFTER_ROWS // calls
    assert calls < ScoreStats.FOLD_AFTER_CALLS
    stats = ScoreStats()
    released = []
    total = 0.0
    for _ in range(calls):
        probs = rng.random(rows)
        total += float(probs.sum())
        released.append(weakref.ref(probs))
        stats.add(probs, risk_levels(probs, DEFAULT_THRESHOLDS))
        del probs
    assert all(ref() is None for ref in released)
    message = stats.to_message()
    assert message.scored == calls * rows
    assert abs(message.mean_probability - total / (calls * rows)) < 1e-12

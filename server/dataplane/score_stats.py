"""Score statistics: counts per risk level and a ten-bucket histogram of probabilities."""

from __future__ import annotations

import threading

import numpy as np

from crm.v1 import churn_pb2, common_pb2
from server.dataplane.risk_rules import LEVELS

EDGES = np.linspace(0.1, 1.0, 10)


class ScoreStats:
    """Counts over every score added. `add` only queues the arrays (it is on every scoring
    call); they are folded into the counts in bulk, when read or when many are queued."""

    # add() folds the queue itself past either bound: calls bound the Python objects held,
    # rows the arrays (256 calls of 10k rows each held ~40 MB before rows were bounded too).
    FOLD_AFTER_CALLS = 256
    FOLD_AFTER_ROWS = 65_536

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queued: list[tuple[np.ndarray, np.ndarray]] = []
        self._queued_rows = 0
        self.scored = 0
        self.total = 0.0
        self.by_level = dict.fromkeys(LEVELS, 0)
        self.buckets = np.zeros(10, dtype=np.int64)

    def add(self, probabilities: np.ndarray, levels: np.ndarray) -> None:
        if probabilities.size == 0:
            return
        with self._lock:
            self._queued.append((probabilities, levels))
            self._queued_rows += probabilities.size
            if (
                len(self._queued) >= self.FOLD_AFTER_CALLS
                or self._queued_rows >= self.FOLD_AFTER_ROWS
            ):
                self._fold()

    def _fold(self) -> None:
        """Fold the queued scores into the counts (caller holds the lock)."""
        if not self._queued:
            return
        probabilities = np.concatenate([p for p, _ in self._queued])
        levels = np.concatenate([lv for _, lv in self._queued])
        self._queued.clear()
        self._queued_rows = 0
        bucket = np.minimum(np.searchsorted(EDGES, probabilities, side="left"), 9)
        self.buckets += np.bincount(bucket, minlength=10)
        per_level = np.bincount(levels, minlength=max(LEVELS) + 1)
        self.scored += int(probabilities.size)
        self.total += float(probabilities.sum())
        for level in LEVELS:
            self.by_level[level] += int(per_level[level])

    def to_message(self) -> churn_pb2.ChurnStats:
        with self._lock:
            self._fold()
            return churn_pb2.ChurnStats(
                scored=self.scored,
                mean_probability=self.total / self.scored if self.scored else 0.0,
                by_risk_level=[
                    churn_pb2.RiskLevelCount(risk_level=level, count=count)  # type: ignore[arg-type]
                    for level, count in self.by_level.items()
                ],
                distribution=[
                    common_pb2.ScoreBucket(upper_bound=round(float(edge), 1), count=int(count))
                    for edge, count in zip(EDGES, self.buckets, strict=True)
                ],
            )

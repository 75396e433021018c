"""Where the server's "now" comes from, and the as-of time a by-id answer uses for it.

By-id features are computed as of the end of the current UTC day (the next midnight), like
training's default as-of (the midnight after the data's last line): every line up to now counts,
and rows and scores can be cached for the whole day.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Protocol

import pandas as pd

SECONDS_PER_DAY = 86_400


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch (UTC)."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


class FileClock:
    """TEST MODE ONLY (--test-clock-file): "now" is the ISO time written in a file, so a test
    can move the server days ahead without waiting. Re-read when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: int | None = None
        self._value = 0.0

    def now(self) -> float:
        stamp = os.stat(self.path).st_mtime_ns
        if stamp != self._stamp:
            text = self.path.read_text().strip()
            self._value = pd.Timestamp(text).timestamp() if text else time.time()
            self._stamp = stamp
        return self._value


def open_clock(test_clock_file: str) -> Clock:
    return FileClock(Path(test_clock_file)) if test_clock_file else SystemClock()


def day_end(now_s: float) -> int:
    """The as-of time for `now_s`: the next UTC midnight (now itself when exactly midnight is
    passed counts toward the next day)."""
    return (math.floor(now_s / SECONDS_PER_DAY) + 1) * SECONDS_PER_DAY

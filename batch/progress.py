"""Progress on stderr while scoring, and the summary at the end."""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TextIO

import pyarrow as pa
import pyarrow.compute as pc

from batch import schema as sch
from batch.revenue import EXPECTED


@dataclass
class Progress:
    """Counts what was written; prints a line at most every `every_s` seconds."""

    total: int | None = None
    out: TextIO = field(default_factory=lambda: sys.stderr)
    every_s: float = 1.0
    rows: int = 0
    errors: int = 0
    segments: Counter[str] = field(default_factory=Counter)
    risks: Counter[str] = field(default_factory=Counter)
    revenue_lines: int = 0
    revenue_errors: int = 0
    revenue_total: float = 0.0
    started: float = field(default_factory=time.perf_counter)
    _shown: float = 0.0

    def add(self, table: pa.Table) -> None:
        self.rows += table.num_rows
        self.errors += table.num_rows - int(
            pc.count(table.column(sch.ERROR), mode="only_null").as_py()
        )
        for name, counter in ((sch.SEGMENT[0], self.segments), (sch.CHURN[1], self.risks)):
            for item in pc.value_counts(table.column(name).drop_null()).to_pylist():
                counter[item["values"]] += item["counts"]
        now = time.perf_counter()
        if now - self._shown >= self.every_s:
            self._shown = now
            print(f"crm-batch: {self.line()}", file=self.out, flush=True)

    def add_revenue(self, table: pa.Table) -> None:
        """Counts a table of valued lines (batch.revenue)."""
        self.revenue_lines += table.num_rows
        self.revenue_errors += table.num_rows - int(
            pc.count(table.column(sch.ERROR), mode="only_null").as_py()
        )
        self.revenue_total += float(pc.sum(table.column(EXPECTED)).as_py() or 0.0)

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        done = f"{self.rows:,}" + (f"/{self.total:,}" if self.total else "")
        return f"{done} rows, {self.rate:,.0f} rows/s, {self.errors:,} with errors"

    def summary(self) -> str:
        def counts(c: Counter[str]) -> str:
            return ", ".join(f"{k} {v:,}" for k, v in c.most_common()) or "none"

        return "\n".join(
            [
                f"rows: {self.rows:,} in {self.seconds:.1f} s ({self.rate:,.0f} rows/s)",
                f"errors: {self.errors:,}",
                f"segments: {counts(self.segments)}",
                f"risk: {counts(self.risks)}",
                *(
                    [
                        f"revenue: {self.revenue_lines:,} lines, {self.revenue_errors:,} not "
                        f"valued, expected net revenue {self.revenue_total:,.2f}"
                    ]
                    if self.revenue_lines
                    else []
                ),
            ]
        )

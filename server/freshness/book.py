"""Every line a stack knows (the shipped history plus ingested lines), by customer, and feature
rows computed from them with crm.features at any as-of time: one customer's in milliseconds,
everyone's in one vectorised pass (the daily ageing)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from crm import features as feat
from crm.line_rules import is_non_product
from server.freshness.lines import StoredLine, stored_lines_frame

# What makes two lines the same line for training's duplicate rule, among the columns kept.
_SAME_LINE = (
    feat.INVOICE,
    feat.STOCK_CODE,
    feat.QUANTITY,
    feat.INVOICE_DATE,
    feat.PRICE,
    feat.CUSTOMER_ID,
)


def _content(frame: pd.DataFrame) -> set[tuple]:
    return set(frame[list(_SAME_LINE)].itertuples(index=False, name=None))


class LineBook:
    """Not thread-safe: server.freshness.state serialises writers; readers get copies."""

    def __init__(self, history: pd.DataFrame, names: Sequence[str]) -> None:
        self.names = list(names)
        self.categories = feat.categories_from_features(self.names)
        self.history = history.reset_index(drop=True)
        self._positions: dict[str, np.ndarray] = {
            str(k): v for k, v in self.history.groupby(feat.CUSTOMER_ID, sort=False).indices.items()
        }
        # StockCode -> category, for ingested lines that name none (as the shipped lines did)
        codes = self.history[[feat.STOCK_CODE, feat.CATEGORY]].drop_duplicates(
            feat.STOCK_CODE, keep="last"
        )
        self.category_of = dict(zip(codes[feat.STOCK_CODE], codes[feat.CATEGORY], strict=True))
        self._ingested: dict[str, list[StoredLine]] = {}
        self._ingested_count = 0
        self._arrays: feat.LineArrays | None = None  # prepared lines of everyone, until a change

    def __contains__(self, customer_id: str) -> bool:
        return customer_id in self._positions or customer_id in self._ingested

    @property
    def ingested_count(self) -> int:
        return self._ingested_count

    def add(self, lines: Iterable[StoredLine]) -> list[str]:
        """Lines that count toward features (training's rules: merchandise only, no exact
        repeat of a known line); returns the customers whose lines changed."""
        changed: dict[str, None] = {}
        for line in lines:
            if is_non_product(line.stock_code):
                continue
            cid = line.customer_id
            mine = self._ingested.setdefault(cid, [])
            frame = stored_lines_frame([line])
            if _content(frame) & _content(self.customer_frame(cid)):
                continue
            mine.append(line)
            self._ingested_count += 1
            changed[cid] = None
        if changed:
            self._arrays = None
        return list(changed)

    def customer_frame(self, customer_id: str) -> pd.DataFrame:
        parts = []
        pos = self._positions.get(customer_id)
        if pos is not None:
            parts.append(self.history.iloc[pos])
        mine = self._ingested.get(customer_id)
        if mine:
            parts.append(stored_lines_frame(mine))
        if not parts:
            return self.history.iloc[:0]
        return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]

    def rows(self, customer_ids: Sequence[str], as_of_s: float) -> tuple[list[str], np.ndarray]:
        """(ids, float32 [k, F]) of the given customers with a line before `as_of_s`."""
        frames = [self.customer_frame(c) for c in customer_ids]
        frames = [f for f in frames if len(f)]
        if not frames:
            return [], np.zeros((0, len(self.names)), np.float32)
        lines = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        return feat.customer_feature_matrix(
            lines, pd.Timestamp(as_of_s, unit="s"), self.names, self.category_of
        )

    def everyone(self, as_of_s: float) -> tuple[np.ndarray, np.ndarray]:
        """(ids, float32 [n, F]) of every customer, in one vectorised crm.features pass."""
        if self._arrays is None:
            ingested = [line for mine in self._ingested.values() for line in mine]
            lines = self.history
            if ingested:
                lines = pd.concat([lines, stored_lines_frame(ingested)], ignore_index=True)
            self._arrays = feat.LineArrays(feat.prepare_lines(lines, self.category_of))
        ids, matrix = feat.compute_customer_features(
            self._arrays, pd.Timestamp(as_of_s, unit="s"), self.categories
        )
        expected = feat.feature_names(self.categories)
        if expected != self.names:
            matrix = matrix[:, [expected.index(n) for n in self.names]]
        return np.asarray([str(i) for i in ids], dtype=object), np.ascontiguousarray(matrix)

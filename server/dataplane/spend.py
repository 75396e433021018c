"""The spend handler (next-horizon spend per customer, total and per category) and the revenue
handler (expected net revenue of invoice lines after returns)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm import features as feat
from crm.line_features import line_feature_matrix
from crm.v1 import common_pb2
from server.dataplane.base import ModelId, ScoringHandler
from server.dataplane.histories import message_lines_frame
from server.dataplane.inputs import Resolved
from server.errors import MAX_VIOLATIONS, FieldViolation, InvalidArgument, NotFound, Unavailable
from server.limits import required_timestamp_violation
from server.line_checks import check_line_values
from server.models.specs import RevenueSpec, SpendSpec

PRODUCTS_ARTIFACT = "products"


@dataclass(frozen=True)
class SpendScores:
    """Row k of `amounts` is request row `rows.scored[k]`: the total, then one column per
    category in `categories` order."""

    model: ModelId
    currency: str
    horizon_days: int
    categories: tuple[str, ...]
    rows: Resolved
    amounts: np.ndarray  # float64 [k, 1 + len(categories)]


@dataclass(frozen=True)
class LineRevenue:
    model: ModelId
    currency: str
    gross: np.ndarray  # float64 [lines]: quantity x price
    expected_net: np.ndarray  # float64 [lines]


class SpendHandler(ScoringHandler):
    model_name = "spend"

    def predict(
        self,
        customers: Sequence[common_pb2.CustomerInput],
        batch: common_pb2.FeatureMatrix | None,
        *,
        version: int = 0,
        timeout: float | None = None,
        as_of_ns: int | None = None,
    ) -> SpendScores:
        with self.plane.counted():
            artifact = self.model(version)
            spec: SpendSpec = artifact.spec
            by_id = self.plane.snapshot_at(customers, as_of_ns)  # as of now unless given
            rows = self.resolve(artifact, customers, batch, by_id)
            out = self.score(artifact, rows, timeout)
            k = rows.matrix.shape[0]
            amounts = (
                np.asarray(out["spend"], dtype=np.float64).reshape(k, -1)
                if k
                else np.zeros((0, 1 + len(spec.categories)))
            )
            return SpendScores(
                ModelId.of(artifact),
                spec.currency,
                spec.horizon_days,
                spec.categories,
                rows,
                amounts,
            )


def sale_line_problems(lines: Sequence[common_pb2.TransactionLine]) -> list[FieldViolation]:
    """Invoice lines to price: sales only (quantity and price > 0), dated within the API's
    timestamp range."""
    problems: list[FieldViolation] = []
    for i, line in enumerate(lines):
        path = f"lines[{i}]"
        check_line_values(line, path, problems, sale=True)
        if bad := required_timestamp_violation(line, "invoice_date", path):
            problems.append(bad)
        if len(problems) >= MAX_VIOLATIONS:
            break
    return problems


class RevenueHandler(ScoringHandler):
    model_name = "revenue"

    def _category_of(self) -> dict[str, str]:
        """StockCode -> category from the product snapshot, for lines that carry none."""
        try:
            products = self.plane.registry.get(PRODUCTS_ARTIFACT)
        except (NotFound, Unavailable):
            return {}
        payload = products.payload
        if payload is None:
            return {}
        return self.cache.get(
            ("category_of", products.version),
            lambda: dict(zip(payload.product_ids, payload.category, strict=True)),
        )

    def predict(
        self,
        lines: Sequence[common_pb2.TransactionLine],
        *,
        version: int = 0,
        timeout: float | None = None,
    ) -> LineRevenue:
        if not lines:
            raise InvalidArgument.field("lines", "at least one line is required")
        limit = self.plane.resolver.max_rows
        if len(lines) > limit:
            raise InvalidArgument.field(
                "lines", f"{len(lines)} lines exceed the limit of {limit} per call"
            )
        problems = sale_line_problems(lines)
        if problems:
            raise InvalidArgument(problems)
        return self.predict_frame(message_lines_frame(lines), version=version, timeout=timeout)

    def predict_frame(
        self, frame: pd.DataFrame, *, version: int = 0, timeout: float | None = None
    ) -> LineRevenue:
        """Sale lines already checked by the sale-line rules, as the crm.features line frame
        (bulk scoring enters here). An invoice's lines must be in the same call: a line's
        features include its invoice's line count and gross."""
        with self.plane.counted():
            artifact = self.model(version)
            spec: RevenueSpec = artifact.spec
            matrix = line_feature_matrix(frame, list(spec.categories), self._category_of())
            out = self.plane.run(artifact, matrix, timeout)
            expected = np.asarray(out["revenue"], dtype=np.float64).reshape(-1)
            gross = frame[feat.QUANTITY].to_numpy() * frame[feat.PRICE].to_numpy()
            return LineRevenue(ModelId.of(artifact), spec.currency, gross, expected)

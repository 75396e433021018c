"""Bulk scoring of a pandas DataFrame: the frame cut into request batches, responses into rows.

Only the encoding and decoding live here; clients.scoring sends the batches. A batch carries
feature columns as one columnar matrix, or ids alone for customers the server looks up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from clients.scoring_convert import churn_result, risk_level, segment_result, spend_result, to_input
from crm.v1 import common_pb2, segmentation_pb2


@dataclass(frozen=True)
class FrameBatches:
    """A DataFrame as consecutive batches of `batch_rows` rows, in row order.

    Feature columns: every column but `id_column`; with `id_column` alone, customers are
    looked up by id.
    """

    ids: list[str] | None
    feature_names: list[str]
    values: np.ndarray | None  # float32, one row per frame row
    batch_rows: int
    rows: int

    @classmethod
    def of(cls, frame: Any, batch_rows: int, id_column: str) -> FrameBatches:
        ids = frame[id_column].astype(str).tolist() if id_column in frame.columns else None
        names = [c for c in frame.columns if c != id_column]
        values = frame[names].to_numpy(dtype=np.float32) if names else None
        return cls(ids, names, values, batch_rows, len(frame))

    @property
    def starts(self) -> range:
        return range(0, self.rows, self.batch_rows)

    def ids_at(self, start: int) -> list[str] | None:
        return self.ids[start : start + self.batch_rows] if self.ids else None

    def payload(self, start: int) -> dict[str, Any]:
        """The batch at `start` as request fields: {"batch": FeatureMatrix} or {"customers"}."""
        stop = min(start + self.batch_rows, self.rows)
        if self.values is not None:
            batch = common_pb2.FeatureMatrix(
                feature_names=self.feature_names,
                values=self.values[start:stop].reshape(-1).tolist(),
                row_keys=self.ids[start:stop] if self.ids else [],
            )
            return {"batch": batch}
        assert self.ids is not None
        return {"customers": [to_input(c) for c in self.ids[start:stop]]}


def response_rows(
    kind: str, response: Any, start: int, ids: Sequence[str] | None
) -> list[dict[str, Any]]:
    """One output row per answered input row of the batch at `start`, columnar or not."""
    model = f"{response.model.name}:{response.model.version}"
    if kind == "segments":
        if response.HasField("columns"):
            return _segment_rows(response.columns, start, ids, model)
        return [
            {"row": start + a.index, "customer_id": a.customer_id, "model": model,
             **_flat(segment_result(a))}
            for a in response.assignments
        ]  # fmt: skip
    if response.HasField("columns"):
        cols = response.columns
        if kind == "churn":
            return [
                {"row": start + i, "customer_id": ids[i] if ids else "", "model": model,
                 "probability": float(p), "risk_level": risk_level(r)}
                for i, (p, r) in enumerate(zip(cols.probabilities, cols.risk_levels, strict=True))
            ]  # fmt: skip
        width = len(cols.categories)
        amounts = np.asarray(cols.category_amounts, dtype=np.float64).reshape(-1, width or 1)
        return [
            {"row": start + i, "customer_id": ids[i] if ids else "", "model": model,
             "total": float(t), **{f"spend_{c}": float(amounts[i, j]) for j, c in enumerate(cols.categories)}}
            for i, t in enumerate(cols.totals)
        ]  # fmt: skip
    convert = churn_result if kind == "churn" else spend_result
    out = []
    for p in response.predictions:
        result = _flat(convert(p))
        if kind == "spend":
            cats = result.pop("categories") or {}
            result.update({f"spend_{c}": v for c, v in cats.items()})
        out.append({"row": start + p.index, "model": model, **result})
    return out


def _segment_rows(
    cols: segmentation_pb2.SegmentColumns, start: int, ids: Sequence[str] | None, model: str
) -> list[dict[str, Any]]:
    legend = {c.cluster_id: c for c in cols.legend}
    unknown = segmentation_pb2.SegmentLegend()
    return [
        {"row": start + i, "customer_id": ids[i] if ids else "", "model": model,
         "segment": legend.get(c, unknown).segment_name, "cluster_id": c, "recency_score": r,
         "frequency_score": f, "monetary_score": m,
         "recommended_action": legend.get(c, unknown).recommended_action}
        for i, (c, r, f, m) in enumerate(zip(
            cols.cluster_ids, cols.recency_scores, cols.frequency_scores, cols.monetary_scores,
            strict=True,
        ))
    ]  # fmt: skip


def _flat(result: Any) -> dict[str, Any]:
    """A result dataclass as CSV-ready columns: no index or drivers, error as one string."""
    data = asdict(result)
    data.pop("index", None)
    data.pop("drivers", None)
    error = data.pop("error", None)
    data["error"] = f"{error['code']}: {error['message']}" if error else ""
    if "recommendations" in data:
        data["recommendations"] = ";".join(data["recommendations"])
    return data

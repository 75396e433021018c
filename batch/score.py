"""One chunk of customers through the data plane's handlers, into one output table.

Feature rows go to each handler as the columnar FeatureMatrix a gRPC client would send;
customer ids as the CustomerInput messages the services pass on (answered from the outputs
precomputed over the snapshot, as served). A row the data plane would refuse becomes an
`error` instead of failing the chunk: its violations are read back from the resolver itself.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from batch import schema as sch
from batch.plane import BatchPlane
from batch.wire import feature_matrix
from crm.v1 import churn_pb2, common_pb2
from server.dataplane.risk_rules import recommendations
from server.errors import InvalidArgument, NotFound

_VALUE_PATH = re.compile(r"batch\.values\[(\d+)\]\.(.+)")
# onnxruntime's result for a row depends on where the row sits in the call, in the last
# float32 place (measured on the trained models: the last rows % 4 of a churn call, and any
# row of a spend call whose position modulo 4 differs, <= 3e-7 relative). Engines cut chunks
# at multiples of ROW_BLOCK and each call is padded to whole blocks, so a row gets the same
# number in every engine, and the number a served call holding the whole file gives.
ROW_BLOCK = 4


@functools.cache
def risk_name(level: int) -> str:
    return churn_pb2.RiskLevel.Name(level).removeprefix("RISK_LEVEL_")


@functools.cache
def recommendation_codes(level: int, high_value: bool) -> str:
    """The rule table's codes, ';'-joined (the served reply lists the same codes)."""
    return ";".join(r.code for r in recommendations(level, high_value))


@dataclass
class _Scored:
    """Per-model results for rows `rows` (chunk positions) of a chunk."""

    rows: np.ndarray
    churn: object
    spend: object
    segments: object


class ChunkScorer:
    """Scores chunks with one in-process data plane (one per process or Ray actor)."""

    def __init__(self, plane: BatchPlane, schema: pa.Schema) -> None:
        self.plane = plane
        self.schema = schema
        self.names = plane.feature_names()
        self._columns: dict[str, np.ndarray | None] = {}
        for name in ("churn", "spend", "segmentation"):
            wanted = plane.model(name).model.feature_names
            self._columns[name] = (
                None
                if set(wanted) == set(self.names)
                else np.array([self.names.index(f) for f in wanted])
            )

    # -- feature rows ----------------------------------------------------------------------
    def score_features(
        self, ids: Sequence[str], matrix: np.ndarray, errors: list[str | None]
    ) -> pa.Table:
        """`matrix` [n, len(self.names)] float32; rows with an error already are skipped."""
        ok = self._validate(matrix, errors)
        rows = np.flatnonzero(ok)
        if not rows.size:
            return self._table(ids, errors, None)
        m = matrix[rows]
        pad = -rows.size % ROW_BLOCK
        if pad:
            m = np.concatenate([m, np.repeat(m[-1:], pad, axis=0)])

        # a model reading every column shares one message: its resolver takes the columns
        # by name, as for a client's columnar call (each conversion copies the chunk 3 times)
        shared = feature_matrix(self.names, m)

        def batch(model: str) -> common_pb2.FeatureMatrix:
            cols = self._columns[model]
            if cols is None:
                return shared
            return feature_matrix(self.plane.model(model).model.feature_names, m[:, cols])

        scored = _Scored(
            rows,
            self.plane.churn.predict([], batch("churn"), with_high_value=True),
            self.plane.spend.predict([], batch("spend")),
            self.plane.segments.assign([], batch("segmentation")),
        )
        return self._table(ids, errors, scored)

    def _validate(self, matrix: np.ndarray, errors: list[str | None]) -> np.ndarray:
        """Rows the resolver accepts; the others get its violation as their error. It reports
        at most 50 violations per call, so it is asked again until it accepts the rest."""
        ok = np.array([e is None for e in errors], dtype=bool)
        resolver = self.plane.plane.resolver
        while True:
            rows = np.flatnonzero(ok)
            if not rows.size:
                return ok
            try:
                resolver.resolve([], feature_matrix(self.names, matrix[rows]), self.names, None)
                return ok
            except InvalidArgument as err:
                for v in err.violations:
                    found = _VALUE_PATH.fullmatch(v.field)
                    if found is None:
                        raise
                    r = int(rows[int(found.group(1))])
                    ok[r] = False
                    errors[r] = errors[r] or f"{found.group(2)}: {v.description}"

    # -- customer ids ----------------------------------------------------------------------
    def score_ids(self, ids: Sequence[str], errors: list[str | None]) -> pa.Table:
        """Customers looked up in the feature snapshot by the handlers themselves."""
        for i, cid in enumerate(ids):
            if errors[i] is None and not cid.strip():
                errors[i] = "customer_id: must not be empty"
        asked = [i for i, e in enumerate(errors) if e is None]
        if not asked:
            return self._table(ids, errors, None)
        customers = [common_pb2.CustomerInput(customer_id=ids[i]) for i in asked]
        try:
            churn = self.plane.churn.predict(customers, None)
        except NotFound as err:  # a lone unknown id is the call's NOT_FOUND
            errors[asked[0]] = f"customer_id: {err.message}"
            return self._table(ids, errors, None)
        scored = _Scored(
            np.asarray(asked)[churn.rows.scored],
            churn,
            self.plane.spend.predict(customers, None),
            self.plane.segments.assign(customers, None),
        )
        for position, row_error in churn.rows.errors.items():
            errors[asked[position]] = f"customer_id: {row_error.message}"
        return self._table(ids, errors, scored)

    # -- output ----------------------------------------------------------------------------
    def _table(
        self, ids: Sequence[str], errors: list[str | None], scored: _Scored | None
    ) -> pa.Table:
        n = len(ids)
        out: dict[str, pa.Array] = {
            sch.ID: pa.array(list(ids), pa.string()),
            sch.ERROR: pa.array(errors, pa.string()),
        }
        rows = scored.rows if scored is not None else np.zeros(0, np.int64)
        valid = np.zeros(n, dtype=bool)
        valid[rows] = True

        def spread(values: np.ndarray, kind: pa.DataType) -> pa.Array:
            values = np.asarray(values)[: rows.size]  # without the padding rows
            if valid.all():
                return pa.array(values, kind)
            full = np.zeros(n, dtype=values.dtype)
            full[rows] = values
            return pa.array(full, kind, mask=~valid)

        def labels(codes: np.ndarray, name_of: Callable[[int], str]) -> pa.Array:
            """Strings for small non-negative codes: one `name_of` call per code value,
            then Arrow's take (building strings from Python objects row by row was the
            largest cost of writing a chunk)."""
            present = np.bincount(codes[: rows.size]) if rows.size else np.zeros(0, np.int64)
            names = pa.array([name_of(c) if k else "" for c, k in enumerate(present.tolist())])
            return names.take(spread(codes, pa.int32()))

        if scored is None:
            for field in self.schema:
                if field.name not in out:
                    out[field.name] = pa.nulls(n, field.type)
            return pa.table(out, schema=self.schema)
        churn, spend, seg = scored.churn, scored.spend, scored.segments
        k = rows.size
        levels = churn.levels[:k].astype(np.int64)
        out[sch.CHURN[0]] = spread(churn.probabilities.astype(np.float64), pa.float64())
        out[sch.CHURN[1]] = labels(levels, risk_name)
        advice = levels * 2 + churn.high_value[:k].astype(np.int64)
        out[sch.CHURN[2]] = labels(advice, lambda c: recommendation_codes(c // 2, bool(c % 2)))
        out[sch.SPEND_TOTAL] = spread(spend.amounts[:, 0], pa.float64())
        for c, category in enumerate(spend.categories):
            out[sch.spend_column(category)] = spread(spend.amounts[:, 1 + c], pa.float64())
        clusters = seg.clusters[:k].astype(np.int64)
        out[sch.SEGMENT[0]] = labels(clusters, lambda c: seg.spec.segment(c).name)
        out[sch.SEGMENT[1]] = labels(clusters, lambda c: seg.spec.segment(c).action)
        out[sch.SEGMENT[2]] = spread(seg.clusters.astype(np.int32), pa.int32())
        for name, values in zip(sch.RFM, (seg.recency, seg.frequency, seg.monetary), strict=True):
            out[name] = spread(values.astype(np.int8), pa.int8())
        return pa.table(out, schema=self.schema)

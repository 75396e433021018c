"""Input resolution shared by the segmentation, churn and spend services.

Every customer arrives as `customer_id` (looked up in the feature snapshot), explicit named
`features`, or raw `transactions` plus an as-of time (features computed by crm.features, the
module training used); or many customers at once as a columnar `batch`. All become one float32
matrix in the model's feature order.

Rules (documented in the README):
- malformed input fails the whole call with INVALID_ARGUMENT, one field violation per problem,
  e.g. `customers[3].features.recency_days`;
- an unknown customer_id is a per-row NOT_FOUND marker (RowError code 5) in a batch, and the
  call's NOT_FOUND when the request holds that one customer alone;
- more rows than `max_request_rows` is INVALID_ARGUMENT on `customers` (or `batch`).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from google.rpc import code_pb2

from crm.v1 import common_pb2
from server.dataplane.histories import features_from_histories
from server.dataplane.value_checks import check_values
from server.errors import (
    MAX_VIOLATIONS,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    echo,
)
from server.models.snapshot import FeatureSnapshot


@dataclass
class Resolved:
    """Rows ready to score: `matrix` holds the rows of `scored` (request indexes), in order."""

    n: int
    matrix: np.ndarray
    scored: np.ndarray
    customer_ids: list[str]
    request_keys: list[str]
    errors: dict[int, common_pb2.RowError] = field(default_factory=dict)
    # When every scored row came from `snapshot` (by customer_id): their snapshot rows, in
    # `scored` order, so scores precomputed over the whole snapshot can answer the call.
    snapshot_rows: np.ndarray | None = None
    snapshot: FeatureSnapshot | None = None
    by_id: int = 0  # rows given by customer_id (found or not): the reply states their as-of

    @property
    def as_of_ns(self) -> int | None:
        """The as-of time of the rows given by customer_id (None when there are none)."""
        return self.snapshot.as_of_ns if self.by_id and self.snapshot is not None else None


@functools.lru_cache(maxsize=64)
def _picker(names: tuple[str, ...]) -> Callable[[Mapping[str, float]], Any]:
    """One C call that reads a customer's named values in model order (a tuple, or the value
    itself for a one-feature model). Only for maps known to hold every name: indexing a
    protobuf map inserts a missing key."""
    return operator.itemgetter(*names)


class InputResolver:
    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows

    def resolve(
        self,
        customers: Sequence[common_pb2.CustomerInput],
        batch: common_pb2.FeatureMatrix | None,
        names: Sequence[str],
        snapshot: FeatureSnapshot | None,
        category_of: Mapping[str, str] | None = None,
    ) -> Resolved:
        has_batch = batch is not None and bool(batch.feature_names or batch.values)
        if customers and has_batch:
            raise InvalidArgument.field("batch", "give `customers` or `batch`, not both")
        if has_batch:
            return self._resolve_batch(batch, names)
        if not customers:
            raise InvalidArgument.field("customers", "at least one customer is required")
        if len(customers) > self.max_rows:
            raise InvalidArgument.field(
                "customers", f"{len(customers)} rows exceed the limit of {self.max_rows} per call"
            )
        with np.errstate(over="ignore"):  # beyond float32 becomes inf: reported as not finite
            return self._resolve_rows(customers, names, snapshot, category_of)

    # -- columnar --------------------------------------------------------------------------
    def _resolve_batch(self, batch: common_pb2.FeatureMatrix, names: Sequence[str]) -> Resolved:
        given = list(batch.feature_names)
        problems: list[FieldViolation] = []
        if len(set(given)) != len(given):
            problems.append(FieldViolation("batch.feature_names", "names must be unique"))
        missing = [n for n in names if n not in given]
        extra = [n for n in given if n not in names]
        if missing:
            problems.append(FieldViolation("batch.feature_names", f"missing: {', '.join(missing)}"))
        if extra:
            problems.append(FieldViolation("batch.feature_names", f"unknown: {', '.join(extra)}"))
        if problems:
            raise InvalidArgument(problems)
        width = len(given)
        values = np.asarray(batch.values, dtype=np.float32)
        if values.size % width:
            raise InvalidArgument.field(
                "batch.values", f"{values.size} values is not a multiple of {width} features"
            )
        rows = values.size // width
        if rows == 0:
            raise InvalidArgument.field("batch.values", "at least one row is required")
        if rows > self.max_rows:
            raise InvalidArgument.field(
                "batch.values", f"{rows} rows exceed the limit of {self.max_rows} per call"
            )
        keys = list(batch.row_keys)
        if keys and len(keys) != rows:
            raise InvalidArgument.field(
                "batch.row_keys", f"{len(keys)} keys for {rows} rows: give none or one per row"
            )
        matrix = values.reshape(rows, width)
        order = [given.index(n) for n in names]
        if order != list(range(width)):
            matrix = matrix[:, order]
        check_values(
            matrix, names, lambda r, n: f"batch.values[{r}].{n}", problems
        )  # row-major index
        if problems:
            raise InvalidArgument(problems)
        return Resolved(
            rows,
            np.ascontiguousarray(matrix),
            np.arange(rows),
            keys or [""] * rows,
            [""] * rows,
        )

    # -- per customer ----------------------------------------------------------------------
    def _resolve_rows(
        self,
        customers: Sequence[common_pb2.CustomerInput],
        names: Sequence[str],
        snapshot: FeatureSnapshot | None,
        category_of: Mapping[str, str] | None,
    ) -> Resolved:
        n = len(customers)
        width = len(names)
        matrix = np.zeros((n, width), dtype=np.float32)
        ok = np.zeros(n, dtype=bool)
        ids = [""] * n
        keys = [c.request_key for c in customers]
        errors: dict[int, common_pb2.RowError] = {}
        problems: list[FieldViolation] = []
        by_id: list[tuple[int, int]] = []
        histories: list[int] = []
        pick = _picker(tuple(names))
        by_features = 0
        for i, customer in enumerate(customers):
            form = customer.WhichOneof("input")
            if form == "customer_id":
                cid = customer.customer_id.strip()
                ids[i] = cid
                if not cid:
                    problems.append(
                        FieldViolation(f"customers[{i}].customer_id", "must not be empty")
                    )
                    continue
                if snapshot is None:
                    raise FailedPrecondition(
                        "no customer feature snapshot is loaded: send features or transactions"
                    )
                row = snapshot.row_of(cid)
                if row is None:
                    errors[i] = common_pb2.RowError(
                        code=code_pb2.NOT_FOUND,
                        message=f"customer {echo(cid)} is not in the feature snapshot",
                        field=f"customers[{i}].customer_id",
                    )
                else:
                    by_id.append((i, row))
            elif form == "features":
                given = customer.features.values
                # As many values as names and every name present: exactly the model's names.
                if len(given) == width and all(map(given.__contains__, names)):
                    matrix[i] = pick(given)
                    ok[i] = True
                    by_features += 1
                else:
                    problems.extend(
                        FieldViolation(f"customers[{i}].features.{name}", "missing")
                        for name in names
                        if name not in given
                    )
                    name_set = set(names)
                    problems.extend(
                        FieldViolation(
                            f"customers[{i}].features.{name}", "not a feature of this model"
                        )
                        for name in given
                        if name not in name_set
                    )
            elif form == "transactions":
                histories.append(i)
            else:
                problems.append(
                    FieldViolation(
                        f"customers[{i}]", "set one of customer_id, features or transactions"
                    )
                )
            if len(problems) >= MAX_VIOLATIONS:
                break
        if by_features == n:  # the common case: every row given by features, all well-formed
            check_values(matrix, names, lambda r, name: f"customers[{r}].features.{name}", problems)
            if problems:
                raise InvalidArgument(problems)
            return Resolved(n, matrix, np.arange(n), ids, keys)
        feature_rows = np.flatnonzero(ok)
        if feature_rows.size:
            check_values(
                matrix[feature_rows],
                names,
                lambda r, name: f"customers[{feature_rows[r]}].features.{name}",
                problems,
            )
        if histories and not problems:
            features_from_histories(
                customers=customers,
                indexes=histories,
                names=names,
                category_of=category_of,
                matrix=matrix,
                ok=ok,
                ids=ids,
                problems=problems,
            )
        if problems:
            raise InvalidArgument(problems)
        snapshot_rows = None
        if by_id:
            assert snapshot is not None
            try:
                cols = snapshot.columns_for(names)
            except KeyError as err:
                raise FailedPrecondition(f"model and snapshot disagree: {err}") from None
            rows = np.array([r for _, r in by_id])
            if len(by_id) == n:  # the common by-id case: every customer found, nothing else
                return Resolved(
                    n, snapshot.values[rows][:, cols], np.arange(n), ids, keys, errors, rows,
                    snapshot, n,
                )  # fmt: skip
            req = np.array([i for i, _ in by_id])
            matrix[req] = snapshot.values[rows][:, cols]
            ok[req] = True
            if len(by_id) == int(ok.sum()):  # by_id is in request order, like `scored`
                snapshot_rows = rows
        if n == 1 and errors:
            raise NotFound(errors[0].message, "customer", ids[0])
        scored = np.flatnonzero(ok)
        matrix = np.ascontiguousarray(matrix[scored])
        return Resolved(
            n, matrix, scored, ids, keys, errors, snapshot_rows, snapshot, len(by_id) + len(errors)
        )

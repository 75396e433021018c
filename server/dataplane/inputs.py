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
import pandas as pd
from google.rpc import code_pb2

from crm import features as feat
from crm.line_rules import PRICE_RULE, QUANTITY_RULE, bad_history_price, bad_history_quantity
from crm.v1 import common_pb2
from server.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound, echo
from server.limits import timestamp_violation
from server.models.snapshot import FeatureSnapshot

MAX_VIOLATIONS = 50


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
def _signed_mask(names: tuple[str, ...]) -> np.ndarray:
    return np.array([n in feat.SIGNED_FEATURES for n in names], dtype=bool)


_FLOAT32_MAX = float(np.finfo(np.float32).max)


@functools.lru_cache(maxsize=64)
def _lower_bounds(names: tuple[str, ...]) -> np.ndarray:
    """Per-feature lowest valid value: the most negative float32 for signed features, 0 for
    counts and amounts (so -inf fails too)."""
    return np.where(_signed_mask(names), -_FLOAT32_MAX, 0.0).astype(np.float32)


@functools.lru_cache(maxsize=64)
def _picker(names: tuple[str, ...]) -> Callable[[Mapping[str, float]], Any]:
    """One C call that reads a customer's named values in model order (a tuple, or the value
    itself for a one-feature model). Only for maps known to hold every name: indexing a
    protobuf map inserts a missing key."""
    return operator.itemgetter(*names)


def _check_values(
    values: np.ndarray,
    names: Sequence[str],
    path_of: Callable[[int, str], str],
    problems: list[FieldViolation],
) -> None:
    """NaN, infinities and negative counts, reported per row and feature."""
    key = tuple(names)
    # The common case, in four numpy calls: NaN fails both bounds, infinities one of them.
    # Comparisons never warn (a sum would, on overflow).
    if (values >= _lower_bounds(key)).all() and (values <= _FLOAT32_MAX).all():
        return
    signed = _signed_mask(key)
    bad_finite = ~np.isfinite(values)
    bad_sign = (values < 0) & ~signed[None, :] & ~bad_finite
    for r, c in zip(*np.nonzero(bad_finite | bad_sign), strict=True):
        if len(problems) >= MAX_VIOLATIONS:
            return
        why = "must be a finite number" if bad_finite[r, c] else "must be >= 0"
        problems.append(FieldViolation(path_of(int(r), names[int(c)]), why))


def check_matrix(matrix: np.ndarray, names: Sequence[str], field: str) -> None:
    """The typed API's value rules for a raw [N, F] matrix (tensor protocols): INVALID_ARGUMENT
    naming `field[row].feature` for each NaN, infinity or negative count."""
    problems: list[FieldViolation] = []
    with np.errstate(over="ignore"):
        _check_values(matrix, names, lambda r, n: f"{field}[{r}].{n}", problems)
    if problems:
        raise InvalidArgument(problems)


def _message_date_ns(line: common_pb2.TransactionLine) -> int:
    return line.invoice_date.ToNanoseconds()


def lines_frame(
    lines: Sequence[Any],
    customer_id: str | None = None,
    *,
    date_ns: Callable[[Any], int] = _message_date_ns,
) -> pd.DataFrame:
    """Transaction lines as the crm.features line frame (one row per line): messages, or
    anything with their fields (the freshness store's lines), whose date `date_ns` reads.

    `customer_id` overrides every line's own id (the resolver keys lines by request row).
    """
    return pd.DataFrame(
        {
            feat.INVOICE: [line.invoice for line in lines],
            feat.STOCK_CODE: [line.stock_code for line in lines],
            feat.DESCRIPTION: [line.description for line in lines],
            feat.QUANTITY: [line.quantity for line in lines],
            feat.INVOICE_DATE: pd.to_datetime([date_ns(line) for line in lines], unit="ns"),
            feat.PRICE: [line.price for line in lines],
            feat.CUSTOMER_ID: (
                customer_id if customer_id is not None else [line.customer_id for line in lines]
            ),
            feat.COUNTRY: [line.country for line in lines],
            feat.CATEGORY: [line.category for line in lines],
        }
    )


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
        _check_values(
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
            _check_values(
                matrix, names, lambda r, name: f"customers[{r}].features.{name}", problems
            )
            if problems:
                raise InvalidArgument(problems)
            return Resolved(n, matrix, np.arange(n), ids, keys)
        feature_rows = np.flatnonzero(ok)
        if feature_rows.size:
            _check_values(
                matrix[feature_rows],
                names,
                lambda r, name: f"customers[{feature_rows[r]}].features.{name}",
                problems,
            )
        if histories and not problems:
            self._from_histories(
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

    def _from_histories(
        self,
        *,
        customers: Sequence[common_pb2.CustomerInput],
        indexes: Sequence[int],
        names: Sequence[str],
        category_of: Mapping[str, str] | None,
        matrix: np.ndarray,
        ok: np.ndarray,
        ids: list[str],
        problems: list[FieldViolation],
    ) -> None:
        """Features from raw lines, one crm.features call per distinct as-of time."""
        groups: dict[int, list[int]] = {}
        frames: dict[int, pd.DataFrame] = {}
        for i in indexes:
            history = customers[i].transactions
            path = f"customers[{i}].transactions"
            if not history.HasField("as_of"):
                problems.append(FieldViolation(f"{path}.as_of", "required"))
                continue
            lines = history.lines
            if not lines:
                problems.append(FieldViolation(f"{path}.lines", "at least one line is required"))
                continue
            bad_as_of = timestamp_violation(history.as_of, f"{path}.as_of")
            if bad_as_of is not None:
                problems.append(bad_as_of)
                continue
            as_of_ns = history.as_of.ToNanoseconds()
            before = 0
            for j, line in enumerate(lines):
                lp = f"{path}.lines[{j}]"
                if not line.HasField("invoice_date"):
                    problems.append(FieldViolation(f"{lp}.invoice_date", "required"))
                elif bad := timestamp_violation(line.invoice_date, f"{lp}.invoice_date"):
                    problems.append(bad)
                elif line.invoice_date.ToNanoseconds() < as_of_ns:
                    before += 1
                if bad_history_quantity(line.quantity):
                    problems.append(FieldViolation(f"{lp}.quantity", QUANTITY_RULE))
                if bad_history_price(line.price):
                    problems.append(FieldViolation(f"{lp}.price", PRICE_RULE))
                if not line.invoice.strip():
                    problems.append(FieldViolation(f"{lp}.invoice", "required"))
            if before == 0 and not problems:
                problems.append(FieldViolation(f"{path}.lines", "no line is before as_of"))
            owners = {line.customer_id.strip() for line in lines} - {""}
            if len(owners) > 1:
                problems.append(
                    FieldViolation(f"{path}.lines", "lines belong to more than one customer_id")
                )
            ids[i] = owners.pop() if len(owners) == 1 else ""
            if problems:  # no frame from lines that failed a check: the call fails anyway
                continue
            key = f"#{i}"  # one synthetic id per request row, whatever the lines say
            frames[i] = lines_frame(lines, customer_id=key)
            groups.setdefault(as_of_ns, []).append(i)
        if problems:
            return
        for as_of_ns, members in groups.items():
            lines_df = pd.concat([frames[i] for i in members], ignore_index=True)
            as_of = pd.Timestamp(as_of_ns, unit="ns")
            try:
                got_ids, values = feat.customer_feature_matrix(lines_df, as_of, names, category_of)
            except feat.FeatureInputError as err:
                problems.append(
                    FieldViolation(f"customers[{members[0]}].transactions.lines", str(err))
                )
                return
            for cid, row in zip(got_ids, values, strict=True):
                i = int(cid[1:])
                matrix[i] = row
                ok[i] = True

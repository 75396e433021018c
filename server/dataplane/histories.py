"""Customers given as raw transaction lines: the lines checked, framed as crm.features reads
them, and turned into feature rows by the same code training used."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from crm import features as feat
from crm.v1 import common_pb2
from server.errors import FieldViolation
from server.freshness.lines import lines_frame
from server.limits import required_timestamp_violation, timestamp_violation
from server.line_checks import check_line_values


def _message_date_ns(line: common_pb2.TransactionLine) -> int:
    return line.invoice_date.ToNanoseconds()


def message_lines_frame(
    lines: Sequence[common_pb2.TransactionLine], customer_id: str | None = None
) -> pd.DataFrame:
    """Transaction line messages as the crm.features line frame; `customer_id` overrides every
    line's own id (the resolver keys lines by request row)."""
    return lines_frame(lines, _message_date_ns, customer_id)


def features_from_histories(
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
            if bad := required_timestamp_violation(line, "invoice_date", lp):
                problems.append(bad)
            elif line.invoice_date.ToNanoseconds() < as_of_ns:
                before += 1
            check_line_values(line, lp, problems)
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
        frames[i] = message_lines_frame(lines, customer_id=key)
        groups.setdefault(as_of_ns, []).append(i)
    if problems:
        return
    for as_of_ns, members in groups.items():
        lines_df = pd.concat([frames[i] for i in members], ignore_index=True)
        as_of = pd.Timestamp(as_of_ns, unit="ns")
        try:
            got_ids, values = feat.customer_feature_matrix(lines_df, as_of, names, category_of)
        except feat.FeatureInputError as err:
            problems.append(FieldViolation(f"customers[{members[0]}].transactions.lines", str(err)))
            return
        for cid, row in zip(got_ids, values, strict=True):
            i = int(cid[1:])
            matrix[i] = row
            ok[i] = True

"""Raw transaction lines: every line of a customer in one partition, then features per
customer as of one time by crm.features (the module the server's resolver calls).

A customer's lines may be anywhere in the input, so lines are first spilled into partitions by
a hash of Customer ID (bounded memory: one chunk in flight while spilling, one partition per
worker while scoring). A customer with a line the server would refuse (the shared line rules
of crm.line_rules, a date that does not parse or is outside the API's range, no invoice)
gets one output row carrying the first problem, as the server refuses that customer's call.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from batch.read import Source, chunks, numbers, texts
from crm import features as feat
from crm.line_rules import (
    PRICE_RULE,
    QUANTITY_RULE,
    SALE_PRICE_RULE,
    SALE_QUANTITY_RULE,
    bad_history_prices,
    bad_history_quantities,
    bad_sale_prices,
    bad_sale_quantities,
)
from server.limits import TIMESTAMP_MAX, TIMESTAMP_MIN, TIMESTAMP_RULE

PARTITION_COLUMN = "__partition"
LINE_NUMBER = "__line"  # a spilled line's 1-based data row in the input
SPILL_ROWS = 1 << 18


Rule = tuple[Callable[[np.ndarray], np.ndarray], str]


@dataclass(frozen=True)
class LineRules:
    """Which quantities and prices a use of the lines accepts (crm.line_rules)."""

    quantity: Rule
    price: Rule


HISTORY_RULES = LineRules((bad_history_quantities, QUANTITY_RULE), (bad_history_prices, PRICE_RULE))
SALE_RULES = LineRules(
    (bad_sale_quantities, SALE_QUANTITY_RULE), (bad_sale_prices, SALE_PRICE_RULE)
)


@dataclass(frozen=True)
class Features:
    """Feature rows of one partition's customers, plus the customers that failed."""

    ids: list[str]
    matrix: np.ndarray  # float32 [n, F]
    errors: list[str | None]


def partition_count(source: Source, partition_mb: float) -> int:
    """Enough partitions that each holds about `partition_mb` of input."""
    size = source.path.stat().st_size
    return max(1, math.ceil(size / max(partition_mb * (1 << 20), 1.0)))


def spill(source: Source, out_dir: Path, parts: int) -> list[Path]:
    """Write the input's lines into `parts` Parquet files by hash of Customer ID."""
    columns = [c for c in feat.LINE_COLUMNS if c in source.columns]
    paths = [out_dir / f"part-{k:05d}.parquet" for k in range(parts)]
    writers: dict[int, pq.ParquetWriter] = {}
    schema = pa.schema(
        [*(pa.field(c, pa.string()) for c in columns), pa.field(LINE_NUMBER, pa.int64())]
    )
    seen = 0
    try:
        for chunk in chunks(source, columns, SPILL_ROWS):
            numbered = np.arange(seen + 1, seen + 1 + chunk.num_rows, dtype=np.int64)
            seen += chunk.num_rows
            table = chunk.select(columns).append_column(LINE_NUMBER, pa.array(numbered))
            ids = pd.Series(texts(table.column(feat.CUSTOMER_ID)), dtype=object).str.strip()
            bucket = (pd.util.hash_array(ids.to_numpy(dtype=object)) % parts).astype(np.int64)
            order = np.argsort(bucket, kind="stable")
            edges = np.searchsorted(bucket[order], np.arange(parts + 1))
            for k in range(parts):
                if edges[k] == edges[k + 1]:
                    continue
                part = table.take(pa.array(order[edges[k] : edges[k + 1]]))
                part = part.cast(schema)
                if k not in writers:
                    writers[k] = pq.ParquetWriter(paths[k], part.schema)
                writers[k].write_table(part)
    finally:
        for writer in writers.values():
            writer.close()
    return [p for k, p in enumerate(paths) if k in writers]


def _dates(column: pa.ChunkedArray, errors: list[str | None]) -> pd.Series:
    text = pd.Series(texts(column), dtype=object)
    parsed = pd.to_datetime(text, errors="coerce", format="mixed")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    low, high = (pd.Timestamp(t).tz_localize(None) for t in (TIMESTAMP_MIN, TIMESTAMP_MAX))
    bad_parse = parsed.isna().to_numpy()
    out_of_range = ~bad_parse & ((parsed < low) | (parsed >= high)).to_numpy()
    for r in np.flatnonzero(bad_parse).tolist():
        errors[r] = errors[r] or f"{feat.INVOICE_DATE}: not a date-time ({text.iloc[r][:40]!r})"
    for r in np.flatnonzero(out_of_range).tolist():
        errors[r] = errors[r] or f"{feat.INVOICE_DATE}: {TIMESTAMP_RULE}"
    return parsed


@dataclass(frozen=True)
class ParsedLines:
    """A spilled partition as the crm.features line frame, with each line's first problem."""

    frame: pd.DataFrame
    errors: list[str | None]
    numbers: np.ndarray  # int64: the lines' 1-based data rows in the input


def parse_partition(path: Path, rules: LineRules) -> ParsedLines:
    """Read one partition: numbers and dates parsed, `rules` applied to quantity and price
    (history lines for features, sale lines for revenue), an invoice required."""
    table = pq.read_table(path)
    n = table.num_rows
    errors: list[str | None] = [None] * n
    ids = pd.Series(texts(table.column(feat.CUSTOMER_ID)), dtype=object).str.strip()
    quantity = numbers(table.column(feat.QUANTITY), feat.QUANTITY, errors)
    price = numbers(table.column(feat.PRICE), feat.PRICE, errors)
    for column, values, (is_bad, rule) in (
        (feat.QUANTITY, quantity, rules.quantity),
        (feat.PRICE, price, rules.price),
    ):
        for r in np.flatnonzero(is_bad(values)).tolist():
            errors[r] = errors[r] or f"{column}: {rule}"
    invoice = pd.Series(texts(table.column(feat.INVOICE)), dtype=object)
    for r in np.flatnonzero(invoice.str.strip().eq("").to_numpy()).tolist():
        errors[r] = errors[r] or f"{feat.INVOICE}: required"
    dates = _dates(table.column(feat.INVOICE_DATE), errors)
    frame = pd.DataFrame(
        {
            feat.INVOICE: invoice,
            feat.STOCK_CODE: texts(table.column(feat.STOCK_CODE)),
            feat.QUANTITY: quantity,
            feat.INVOICE_DATE: dates,
            feat.PRICE: price,
            feat.CUSTOMER_ID: ids,
            **{
                c: texts(table.column(c))
                for c in (feat.DESCRIPTION, feat.COUNTRY, feat.CATEGORY)
                if c in table.column_names
            },
        }
    )
    line_numbers = (
        np.asarray(table.column(LINE_NUMBER), dtype=np.int64)
        if LINE_NUMBER in table.column_names
        else np.arange(1, n + 1, dtype=np.int64)
    )
    return ParsedLines(frame, errors, line_numbers)


def partition_features(path: Path, as_of: datetime, names: Sequence[str]) -> Features:
    """Feature rows of every customer in one spilled partition, in first-seen order."""
    parsed = parse_partition(path, HISTORY_RULES)
    frame, errors = parsed.frame, parsed.errors
    ids = frame[feat.CUSTOMER_ID]
    known = ids.ne("").to_numpy()  # a line without a customer belongs to no one's features
    first_error = _first_error_per_customer(ids, errors, known)
    as_of_ts = pd.Timestamp(as_of)
    if as_of_ts.tzinfo is not None:
        as_of_ts = as_of_ts.tz_convert("UTC").tz_localize(None)
    failed = set(first_error)
    good = known & ~ids.isin(failed).to_numpy()
    got_ids, matrix = feat.customer_feature_matrix(frame[good], as_of_ts, names)
    seen = pd.unique(ids[known])
    scored = set(got_ids)
    out_ids = got_ids + [c for c in seen if c in failed or c not in scored]
    out_errors: list[str | None] = [None] * len(got_ids)
    for cid in out_ids[len(got_ids) :]:
        out_errors.append(first_error.get(cid, "lines: no line is before as_of"))
    pad = np.zeros((len(out_ids) - len(got_ids), len(names)), dtype=np.float32)
    return Features(out_ids, np.vstack([matrix, pad]), out_errors)


def _first_error_per_customer(
    ids: pd.Series, errors: list[str | None], known: np.ndarray
) -> dict[str, str]:
    """Customer id -> the first problem among its lines."""
    found: dict[str, str] = {}
    for r in (i for i, e in enumerate(errors) if e is not None and known[i]):
        found.setdefault(ids.iloc[r], errors[r])
    return found

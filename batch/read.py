"""Reading inputs: CSV or Parquet, streamed in chunks, never whole.

Which input it is (feature rows, customer ids, raw transaction lines) is decided from the
header before anything is scored, so a missing column fails the run at once, named. Values
are read as text (CSV) and converted per column: a value that is not a number becomes that
row's error, not the run's.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from crm import features as feat

ID_COLUMN = "customer_id"
# a Parquet input whose row groups all hold at most this many chunks is read by the Ray
# actors directly (by row ranges); bigger groups are staged into chunk-sized ones
MAX_GROUP_CHUNKS = 4


class InputError(Exception):
    """The input cannot be scored at all (exit 2): a missing column, an unreadable file."""


class Kind(Enum):
    FEATURES = "features"
    IDS = "ids"
    LINES = "lines"


@dataclass(frozen=True)
class Source:
    """An input file and what it holds."""

    path: Path
    columns: tuple[str, ...]
    kind: Kind
    rows: int | None  # known up front for Parquet

    @property
    def is_parquet(self) -> bool:
        return self.path.suffix.lower() in (".parquet", ".pq")


def header(path: Path) -> tuple[list[str], int | None]:
    """Column names (and row count when the format records it)."""
    if not path.is_file():
        raise InputError(f"input {path} does not exist")
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            meta = pq.ParquetFile(path)
        except (OSError, pa.ArrowException) as err:
            raise InputError(f"input {path} is not a readable Parquet file: {err}") from None
        return list(meta.schema_arrow.names), meta.metadata.num_rows
    with path.open(newline="", encoding="utf-8-sig") as f:
        first = next(csv.reader(f), None)
    if not first:
        raise InputError(f"input {path} is empty: expected a CSV header")
    return [c.strip() for c in first], None


def detect(path: Path, wanted: Kind | None, feature_names: Sequence[str]) -> Source:
    """The input's kind (given, or from its columns) with every column it needs present."""
    columns, rows = header(path)
    have = set(columns)
    kind = wanted
    if kind is None:
        if all(c in have for c in feat.REQUIRED_COLUMNS):
            kind = Kind.LINES
        elif have & set(feature_names):
            kind = Kind.FEATURES
        else:
            kind = Kind.IDS
    needed = {
        Kind.LINES: list(feat.REQUIRED_COLUMNS),
        Kind.FEATURES: [ID_COLUMN, *feature_names],
        Kind.IDS: [ID_COLUMN],
    }[kind]
    missing = [c for c in needed if c not in have]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise InputError(
            f"input {path} as {kind.value}: column {missing[0]!r} is missing{more}; "
            f"columns found: {', '.join(columns[:12])}{'...' if len(columns) > 12 else ''}"
        )
    return Source(path, tuple(columns), kind, rows)


def chunks(source: Source, columns: Sequence[str], rows: int) -> Iterator[pa.Table]:
    """Tables of `rows` rows (the last shorter) holding `columns`, in file order. CSV cells
    are read as text (empty = null) so conversion errors stay per row."""
    if source.is_parquet:
        # pre_buffer off: with it, the reader keeps every row group's pre-buffered bytes until
        # the file is done, so memory grew with the input (33 MB -> 175 MB over 3M rows)
        batches: Iterator[pa.RecordBatch] = pq.ParquetFile(
            source.path, pre_buffer=False
        ).iter_batches(batch_size=rows, columns=list(columns))
    else:
        reader = pacsv.open_csv(
            source.path,
            read_options=pacsv.ReadOptions(block_size=8 << 20),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in source.columns},
                include_columns=list(columns),
                strings_can_be_null=True,
            ),
        )
        batches = iter(reader)
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        pending.append(batch)
        held += batch.num_rows
        while held >= rows:
            table = pa.Table.from_batches(pending).combine_chunks()
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending, held = rest.to_batches(), rest.num_rows
    if held:
        yield pa.Table.from_batches(pending).combine_chunks()


def texts(column: pa.ChunkedArray | pa.Array) -> list[str]:
    """A column as strings, null as ""."""
    return pc.fill_null(pc.cast(column, pa.string()), "").to_pylist()


def numbers(column: pa.ChunkedArray | pa.Array, name: str, errors: list[str | None]) -> np.ndarray:
    """A column as float64; a cell that is empty or not a number is NaN and that row's error
    (first error of a row wins). One C++ cast in the common case."""
    try:
        values = pc.cast(column, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        text = pd.Series(column.to_pylist(), dtype=object)
        parsed = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(np.isnan(parsed) & text.notna().to_numpy() & ~_nan_text(text))
        for r in bad.tolist():
            if errors[r] is None:
                errors[r] = f"{name}: not a number ({str(text.iloc[r])[:40]!r})"
        values = pa.array(parsed, pa.float64(), mask=text.isna().to_numpy())
    nulls = np.asarray(pc.is_null(values))
    for r in np.flatnonzero(nulls).tolist():
        if errors[r] is None:
            errors[r] = f"{name}: missing value"
    return np.asarray(pc.fill_null(values, np.nan), dtype=np.float64)


def _nan_text(text: pd.Series) -> np.ndarray:
    """Cells spelling NaN themselves (the resolver then says they must be finite)."""
    return text.astype(str).str.strip().str.lower().isin(["nan", "+nan", "-nan"]).to_numpy()


def feature_rows(
    table: pa.Table, names: Sequence[str]
) -> tuple[list[str], np.ndarray, list[str | None]]:
    """(ids, float32 [n, len(names)], per-row errors) of a feature-rows chunk."""
    n = table.num_rows
    errors: list[str | None] = [None] * n
    matrix = np.empty((n, len(names)), dtype=np.float32)
    with np.errstate(over="ignore"):  # beyond float32 is inf: the resolver reports it
        for j, name in enumerate(names):
            matrix[:, j] = numbers(table.column(name), name, errors)
    return texts(table.column(ID_COLUMN)), matrix, errors


def input_columns(kind: Kind, feature_names: Sequence[str]) -> list[str]:
    """The columns a feature-rows or ids input is read with."""
    return [ID_COLUMN] if kind is Kind.IDS else [ID_COLUMN, *feature_names]


def row_ranges(path: Path, chunk_rows: int) -> list[tuple[int, int]] | None:
    """A Parquet file's rows as units of work for actors that read the file themselves:
    [start, stop) ranges on chunk boundaries (multiples of `chunk_rows` from the file's start,
    where `chunks` cuts too), each ending at the first boundary at or after a row group's end,
    so a unit reads whole groups and only a straddled group is read twice. None when a group
    holds more than MAX_GROUP_CHUNKS chunks (one unit would be too big to spread): the caller
    stages the input into chunk-sized groups first."""
    meta = pq.ParquetFile(path).metadata
    sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
    if any(size > MAX_GROUP_CHUNKS * chunk_rows for size in sizes):
        return None
    total, end, cuts = sum(sizes), 0, [0]
    for size in sizes:
        end += size
        cut = min(-(-end // chunk_rows) * chunk_rows, total)
        if cut > cuts[-1]:
            cuts.append(cut)
    return list(pairwise(cuts))


def read_rows(path: Path, start: int, stop: int, columns: Sequence[str]) -> pa.Table:
    """Rows [start, stop) of a Parquet file's `columns`, reading only the groups they touch."""
    f = pq.ParquetFile(path, pre_buffer=False)
    groups: list[int] = []
    first = offset = 0
    for g in range(f.metadata.num_row_groups):
        n = f.metadata.row_group(g).num_rows
        if offset < stop and offset + n > start:
            first = first if groups else offset
            groups.append(g)
        offset += n
    return f.read_row_groups(groups, columns=list(columns)).slice(start - first, stop - start)


def stage(source: Source, columns: Sequence[str], rows: int, path: Path) -> Path:
    """The input's `columns` as one Parquet file of `rows`-row groups (the chunks every engine
    scores), written by streaming: for actors when the input is CSV or its row groups are too
    big to spread (see `row_ranges`)."""
    writer: pq.ParquetWriter | None = None
    try:
        for table in chunks(source, columns, rows):
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table, row_group_size=rows)
    finally:
        if writer is not None:
            writer.close()
    return path

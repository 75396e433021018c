"""The output file: written under a temporary name beside it and renamed when complete, so a
run that fails or is killed never leaves a file that looks like a finished result."""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq


def partial_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial-{os.getpid()}")


class OutputWriter:
    """Parquet (schema metadata kept) or CSV by suffix; `with` renames on success only."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.schema = schema
        self.partial = partial_name(path)
        self.csv = path.suffix.lower() == ".csv"
        self._writer: pq.ParquetWriter | pacsv.CSVWriter | None = None

    def __enter__(self) -> OutputWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.csv:
            self._writer = pacsv.CSVWriter(str(self.partial), self.schema)
        else:
            self._writer = pq.ParquetWriter(self.partial, self.schema, compression="zstd")
        return self

    def write(self, table: pa.Table) -> None:
        assert self._writer is not None
        self._writer.write_table(table)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        assert self._writer is not None
        self._writer.close()
        if kind is None:
            os.replace(self.partial, self.path)
        else:
            self.partial.unlink(missing_ok=True)

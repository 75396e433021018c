"""What a worker (a local process or a Ray actor) needs to score: picklable settings, and the
worker itself, which loads the artifacts once and then scores chunk after chunk."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow as pa

from batch.lines import partition_features
from batch.plane import BatchPlane
from batch.read import ID_COLUMN, Kind, feature_rows, texts
from batch.schema import output_schema
from batch.score import ChunkScorer


@dataclass(frozen=True)
class Job:
    artifacts: Path
    kind: Kind
    pins: Mapping[str, int] = field(default_factory=dict)
    as_of: datetime | None = None
    chunk_rows: int = 65_536
    tree_evaluator: bool = True

    def metadata(self) -> dict[str, str]:
        meta = {"input": self.kind.value}
        if self.as_of is not None:
            meta["as_of"] = self.as_of.isoformat()
        return meta


class Worker:
    """One data plane and its scorer; `__call__` scores one unit of work into a table."""

    def __init__(self, job: Job, plane: BatchPlane | None = None) -> None:
        self.job = job
        self.plane = plane or BatchPlane.load(
            job.artifacts, job.pins, tree_evaluator=job.tree_evaluator
        )
        self.schema = output_schema(self.plane, job.metadata())
        self.scorer = ChunkScorer(self.plane, self.schema)

    def __call__(self, unit: pa.Table | Path) -> pa.Table:
        """A chunk of feature rows or ids (a table), or a spilled partition of lines (a path)."""
        if isinstance(unit, Path):
            return self.partition(unit)
        if self.job.kind is Kind.IDS:
            ids = texts(unit.column(ID_COLUMN))
            return self.scorer.score_ids(ids, [None] * len(ids))
        ids, matrix, errors = feature_rows(unit, self.scorer.names)
        return self.scorer.score_features(ids, matrix, errors)

    def partition(self, path: Path) -> pa.Table:
        assert self.job.as_of is not None
        f = partition_features(path, self.job.as_of, self.scorer.names)
        step = self.job.chunk_rows
        tables = [
            self.scorer.score_features(
                f.ids[i : i + step], f.matrix[i : i + step], f.errors[i : i + step]
            )
            for i in range(0, len(f.ids), step)
        ]
        return pa.concat_tables(tables) if tables else self.schema.empty_table()

"""The Ray engine: a pool of actors, each loading the artifacts once (a `Worker`, the local
engine's too), scores units of work handed out by Ray Data's `map_batches`; the driver writes
the scored tables in input order.

A unit is one row group of a staged Parquet file (feature rows, ids) or one spilled partition
(lines), read by the actor itself: every engine then scores exactly the same chunks. That
matters to the last digit: onnxruntime's result for a row depends on its position within the
call (modulo 4; ~3e-7 relative, measured), so a chunking that differs, as Ray Data's own
block splitting does, changes some numbers in the last float32 place.

Actors claim a fraction of a CPU (default 0.5): on a small machine, actors that each claim a
whole CPU leave none for the tasks upstream and the pipeline stalls. Ray is imported only
here, and only when this engine is chosen; the server never imports it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from batch.job import Job, Worker

Sink = Callable[[pa.Table], None]
WHOLE_FILE = -1


class RayWorker:
    """The callable class Ray Data runs in each actor: rows of (path, group) in, scores out."""

    def __init__(self, job: Job) -> None:
        self.worker = Worker(job)

    def __call__(self, batch: pa.Table) -> pa.Table:
        tables = []
        for path, group in zip(
            batch.column("path").to_pylist(), batch.column("group").to_pylist(), strict=True
        ):
            if group == WHOLE_FILE:  # a spilled partition of lines
                tables.append(self.worker(Path(path)))
            else:
                tables.append(self.worker(pq.ParquetFile(path).read_row_group(group)))
        return pa.concat_tables(tables)


def row_groups(path: Path) -> list[tuple[Path, int]]:
    return [(path, g) for g in range(pq.ParquetFile(path).num_row_groups)]


def run_ray(
    job: Job,
    units: Sequence[tuple[Path, int]],
    sink: Sink,
    *,
    address: str | None = None,
    actors: int | None = None,
    cpus_per_actor: float = 0.5,
) -> None:
    """Score `units` ((Parquet path, row group) or (partition, WHOLE_FILE)) on Ray, in order."""
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(
            address=address,
            num_cpus=None if address else os.cpu_count(),
            include_dashboard=False,
            log_to_driver=False,
        )
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        if actors is None:
            actors = max(1, int(ray.cluster_resources().get("CPU", 1)))
        items = [{"path": str(p), "group": g} for p, g in units]
        ds = ray.data.from_items(items, override_num_blocks=max(1, len(items)))
        scored = ds.map_batches(
            RayWorker,
            fn_constructor_args=(job,),
            batch_size=1,
            batch_format="pyarrow",
            concurrency=min(actors, max(1, len(items))),
            num_cpus=cpus_per_actor,
        )
        for table in scored.iter_batches(batch_size=None, batch_format="pyarrow"):
            sink(table)
    finally:
        if started:
            ray.shutdown()

"""The Ray engine: a pool of actors, each loading the artifacts once (a `Worker`, the local
engine's too), scores units of work handed out by Ray Data's `map_batches`; the driver writes
the scored tables in input order.

A unit is a range of rows of a Parquet file (feature rows, ids: the input itself when its row
groups are small, else a staged copy; see `batch.read.row_ranges`) or one spilled partition
(lines), read by the actor itself and cut into the chunks the local engine cuts (multiples of
`--chunk-rows` from the file's start): every engine then scores exactly the same chunks. That
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

from batch.job import Job, Worker
from batch.read import input_columns, read_rows

Sink = Callable[[pa.Table], None]
Unit = tuple[Path, int, int]  # (Parquet file, start row, stop row) or (partition, WHOLE_FILE, _)
WHOLE_FILE = -1


class RayWorker:
    """The callable class Ray Data runs in each actor: rows of (path, start, stop) in, scores
    out."""

    def __init__(self, job: Job) -> None:
        self.worker = Worker(job)
        self.columns = input_columns(job.kind, self.worker.scorer.names)

    def __call__(self, batch: pa.Table) -> pa.Table:
        tables = []
        step = self.worker.job.chunk_rows
        for path, start, stop in zip(
            batch.column("path").to_pylist(),
            batch.column("start").to_pylist(),
            batch.column("stop").to_pylist(),
            strict=True,
        ):
            if start == WHOLE_FILE:  # a spilled partition of lines
                tables.append(self.worker(Path(path)))
                continue
            rows = read_rows(Path(path), start, stop, self.columns)
            tables.extend(self.worker(rows.slice(i, step)) for i in range(0, rows.num_rows, step))
        return pa.concat_tables(tables)


def run_ray(
    job: Job,
    units: Sequence[Unit],
    sink: Sink,
    *,
    address: str | None = None,
    actors: int | None = None,
    cpus_per_actor: float = 0.5,
) -> None:
    """Score `units` on Ray, in order."""
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
        items = [{"path": str(p), "start": a, "stop": b} for p, a, b in units]
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

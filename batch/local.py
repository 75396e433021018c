"""The local engine: chunks scored by worker processes, each with its own data plane.

Processes, not threads: parsing, validation and the handlers' post-processing hold the GIL,
and one onnxruntime thread per process keeps every core busy without oversubscription. At
most two units per worker are in flight, and results are written in input order, so memory
stays bounded whatever the input's size.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import pyarrow as pa

from batch.job import Job, Worker
from batch.plane import BatchPlane

Unit = pa.Table | Path
Sink = Callable[[pa.Table], None]
_worker: Worker | None = None


def _start(job: Job) -> None:
    global _worker  # noqa: PLW0603 -- one data plane per worker process, loaded once
    _worker = Worker(job)


def _score(unit: Unit) -> pa.Table:
    assert _worker is not None
    return _worker(unit)


def run_local(
    job: Job, units: Iterable[Unit], workers: int, sink: Sink, plane: BatchPlane | None = None
) -> None:
    """Score every unit, in order, into `sink`; `workers` <= 1 scores in this process (with
    `plane` when given: the caller's, already loaded)."""
    if workers <= 1:
        worker = Worker(job, plane)
        for unit in units:
            sink(worker(unit))
        return
    # spawn: a forked copy of a process with Arrow's thread pools can deadlock
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start, initargs=(job,)
    ) as pool:
        pending: deque[Future[pa.Table]] = deque()
        for unit in units:
            pending.append(pool.submit(_score, unit))
            if len(pending) >= 2 * workers:
                sink(pending.popleft().result())
        while pending:
            sink(pending.popleft().result())

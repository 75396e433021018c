"""`crm-batch`: score a file of customers with the server's artifacts and data plane.

Exit codes: 0 scored (rows the data plane refuses carry an `error`); 2 the input or the
arguments cannot be scored at all (a missing column, a missing --as-of, unloadable artifacts),
said in one line before anything is written.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa

from batch.job import Job
from batch.lines import partition_count, spill
from batch.local import run_local
from batch.plane import REVENUE, ArtifactsMissing, BatchPlane
from batch.progress import Progress
from batch.read import InputError, Kind, chunks, detect, input_columns, row_ranges, stage
from batch.revenue import partition_revenue, revenue_schema
from batch.schema import output_schema
from batch.score import ROW_BLOCK
from batch.write import OutputWriter
from server.config import ServerConfig


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="crm-batch",
        description="Score churn, spend and segments for every customer of a CSV or Parquet "
        "file (feature rows, customer ids, or raw transaction lines) into Parquet or CSV.",
    )
    p.add_argument("--input", required=True, type=Path, help="CSV or Parquet (.parquet)")
    p.add_argument("--output", required=True, type=Path, help=".parquet (default) or .csv")
    p.add_argument(
        "--kind", choices=["auto", *(k.value for k in Kind)], default="auto",
        help="what the input holds (auto: from its columns)",
    )  # fmt: skip
    p.add_argument("--as-of", help="lines input: features as of this time (ISO 8601; UTC)")
    p.add_argument(
        "--revenue-output", type=Path,
        help="lines input: also write every line's expected net revenue here (.parquet or .csv)",
    )  # fmt: skip
    p.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    p.add_argument("--pin", default="", help="fixed versions, e.g. churn=3,spend=2 (as the server)")
    p.add_argument("--engine", choices=["local", "ray"], default="local")
    p.add_argument("--workers", type=int, default=0, help="local: processes (0 = all cores)")
    p.add_argument("--address", help="ray: join this cluster (default: start a local one)")
    p.add_argument("--actors", type=int, help="ray: scoring actors (default: the cluster's CPUs)")
    p.add_argument("--cpus-per-actor", type=float, default=0.5)
    p.add_argument("--chunk-rows", type=int, default=65_536, help="rows per handler call")
    p.add_argument("--partition-mb", type=float, default=64, help="lines: input MB per partition")
    p.add_argument(
        "--no-tree-evaluator",
        action="store_true",
        help="onnxruntime runs every graph (as the server's --tree-evaluator false)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines, summary only")
    return p


def _as_of(text: str | None, kind: Kind) -> datetime | None:
    if kind is not Kind.LINES:
        return None
    if not text:
        raise InputError("a lines input needs --as-of (features are computed as of that time)")
    try:
        moment = pd.Timestamp(text)
    except ValueError:
        raise InputError(f"--as-of {text!r} is not an ISO 8601 date-time") from None
    moment = moment.tz_localize(UTC) if moment.tzinfo is None else moment.tz_convert(UTC)
    return moment.to_pydatetime()


def _workers(n: int) -> int:
    import os

    return n if n > 0 else len(os.sched_getaffinity(0))


def run(args: argparse.Namespace) -> Progress:
    """Score the input into the output; raises InputError before writing on bad input."""
    pins = ServerConfig(pin=args.pin).pinned_versions()
    plane = BatchPlane.load(args.artifacts, pins, tree_evaluator=not args.no_tree_evaluator)
    # scoring in this process uses this plane; workers and actors load their own
    in_process = args.engine == "local" and _workers(args.workers) <= 1
    try:
        return _run(args, plane, pins, in_process)
    finally:
        plane.close()


def _run(
    args: argparse.Namespace, plane: BatchPlane, pins: dict[str, int], in_process: bool
) -> Progress:
    names = plane.feature_names()
    wanted = None if args.kind == "auto" else Kind(args.kind)
    source = detect(args.input, wanted, names)
    # whole blocks of 4 rows per call, so a row sits at the same place modulo 4 in every engine
    # (and in a served call of the whole file): see batch.score.ROW_BLOCK
    chunk_rows = -(-max(args.chunk_rows, 1) // ROW_BLOCK) * ROW_BLOCK
    job = Job(
        args.artifacts,
        source.kind,
        pins,
        _as_of(args.as_of, source.kind),
        chunk_rows,
        tree_evaluator=not args.no_tree_evaluator,
    )
    schema = output_schema(plane, job.metadata())
    if args.revenue_output is not None:
        if source.kind is not Kind.LINES:
            raise InputError("--revenue-output needs an input of transaction lines")
        if plane.revenue is None:
            raise InputError(f"--revenue-output: {args.artifacts} holds no revenue model")
        revenue_schema_ = revenue_schema(plane.model(REVENUE))
    columns = input_columns(source.kind, names)
    progress = Progress(
        total=None if args.quiet else source.rows if source.kind is not Kind.LINES else None
    )
    if args.quiet:
        progress.every_s = float("inf")
    with tempfile.TemporaryDirectory(prefix="crm-batch-", dir=args.output.parent) as spill_dir, \
            OutputWriter(args.output, schema) as out:  # fmt: skip

        def sink(table: pa.Table) -> None:
            table = table.select(schema.names).cast(schema)
            out.write(table)
            progress.add(table)

        partitions = None
        if source.kind is Kind.LINES:
            parts = partition_count(source, args.partition_mb)
            partitions = spill(source, Path(spill_dir), parts)
        if args.engine == "ray":
            from batch.ray_engine import WHOLE_FILE, run_ray

            if partitions is not None:
                units = [(p, WHOLE_FILE, WHOLE_FILE) for p in partitions]
            else:
                path = source.path.resolve()
                ranges = row_ranges(path, chunk_rows) if source.is_parquet else None
                if ranges is None:
                    path = stage(source, columns, chunk_rows, Path(spill_dir) / "input.parquet")
                    ranges = row_ranges(path, chunk_rows)
                assert ranges is not None  # staged groups are one chunk each
                units = [(path, start, stop) for start, stop in ranges]
            run_ray(
                job, units, sink,
                address=args.address, actors=args.actors, cpus_per_actor=args.cpus_per_actor,
            )  # fmt: skip
        else:
            local: Iterable[pa.Table | Path] = (
                partitions if partitions is not None else chunks(source, columns, chunk_rows)
            )
            run_local(job, local, _workers(args.workers), sink, plane=plane if in_process else None)
        if args.revenue_output is not None and partitions is not None:
            _revenue(plane, partitions, args.revenue_output, revenue_schema_, progress)
    return progress


def _revenue(
    plane: BatchPlane, partitions: Sequence[Path], path: Path, schema: pa.Schema, progress: Progress
) -> None:
    """Value every line, partition by partition, in this process (the revenue model is small
    next to the customer models; its lines are already spilled by customer)."""
    assert plane.revenue is not None
    with OutputWriter(path, schema) as out:
        for partition in partitions:
            table = partition_revenue(plane.revenue, partition, schema)
            out.write(table)
            progress.add_revenue(table)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    try:
        progress = run(args)
    except (InputError, ArtifactsMissing, ValueError) as err:
        print(f"crm-batch: error: {err}", file=sys.stderr)
        return 2
    print(progress.summary(), file=sys.stderr)
    return 0

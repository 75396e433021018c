"""Workers pinned to one core each (`--pin-cpus`, the default) against unpinned workers.

    python -m benchmarks.bench_pinning [--artifacts DIR] [--workers 2] [--repeats 2]

Single-customer PredictChurn by features at 64 in flight, through the same h2load harness and
success checks as bench_serving, alternating pinned and unpinned servers so drift in the
machine's other load hits both alike. Prints req/s and server CPU per call for every run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from benchmarks.bench_serving import build_cases, load_workload, run_server, train_artifacts
from benchmarks.h2load_grpc import run_h2load

CASE = "churn_features"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_pinning", description=__doc__.split("\n")[0])
    parser.add_argument("--artifacts", type=Path, help="reuse these artifacts (default: train)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per run")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-pinning-") as tmp:
        work = Path(tmp)
        artifacts = args.artifacts or work / "artifacts"
        if args.artifacts is None:
            train_artifacts(artifacts, quick=False)
        case = next(c for c in build_cases(load_workload(artifacts)) if c.key == CASE)
        failed = False
        print(f"{case.label}, {args.workers} workers, 64 in flight (8 connections x 8 streams)")
        for repeat in range(args.repeats):
            for label, extra in (("pinned", ()), ("unpinned", ("--pin-cpus", "false"))):
                log = work / f"server-{label}-{repeat}.log"
                with run_server(
                    artifacts, work / "data", args.workers, 1, log, extra_args=extra
                ) as server:
                    result = run_h2load(
                        server.target, case.method, case.request, 8, 8, args.duration,
                        metrics_url=server.metrics_url, server_pids=server.worker_pids, probes=4,
                    )  # fmt: skip
                if not result.ok:
                    failed = True
                    print(f"{label:9} LOAD FAILED: {'; '.join(result.failures)}")
                    continue
                print(
                    f"{label:9} {result.req_per_s:8,.0f} req/s"
                    f"  {result.server_cpu_us_per_call:5.0f} us server CPU/call"
                    f"  (other load {result.other_cpu_cores or 0:.2f} cores)"
                )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

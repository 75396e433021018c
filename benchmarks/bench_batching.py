"""What the batching queue delay buys, and why: one onnxruntime row in and out of the cache.

    python -m benchmarks.bench_batching [--artifacts DIR] [--delays 0,500] [--repeats 2]
                                        [--workers 1]

1. In-process, on the churn model: the median time of one onnxruntime call on 1, 4, 16 and 64
   rows, with the CPU cache warm (the same call in a loop) and cold (8 MB of other memory read
   before each call, as a busy server does between two calls).
2. One server per `--batch-queue-delay-us` value, alternated so drift in the machine's other
   load hits all alike: single-customer PredictChurn by features at 2, 4, 16 and 64 in flight
   through bench_serving's h2load harness and success checks. Prints req/s, server CPU per call,
   the mean rows per onnxruntime call (`crm_batch_rows`) and the server threads' voluntary
   context switches per call (each one a thread that blocked and later woke) for every run,
   then the medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

from benchmarks.bench_serving import build_cases, load_workload, run_server, train_artifacts
from benchmarks.h2load_grpc import run_h2load

CASE = "churn_features"
EVICT_BYTES = 8 << 20  # more than this machine's 2 MB L2 per core
SHAPES = {2: (2, 1), 4: (4, 1), 16: (4, 4), 64: (8, 8)}  # in flight: (connections, streams)


def cache_effect(model: Path, calls: int = 300) -> list[tuple[int, float, float]]:
    """(rows, warm us, cold us): median onnxruntime call time on the churn model."""
    import onnxruntime as ort

    from server.models.runtime import session_options

    session = ort.InferenceSession(
        str(model), session_options(1), providers=["CPUExecutionProvider"]
    )
    name, width = session.get_inputs()[0].name, session.get_inputs()[0].shape[1]
    x = np.random.default_rng(0).random((4096, width), dtype=np.float32) * 100
    other = np.ones(EVICT_BYTES, dtype=np.uint8)

    def median_us(rows: int, evict: bool) -> float:
        times = []
        for i in range(calls):
            if evict:
                other.sum()
            start = (i * rows) % (x.shape[0] - rows)
            t0 = time.perf_counter()
            session.run(None, {name: x[start : start + rows]})
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1e6

    return [(rows, median_us(rows, False), median_us(rows, True)) for rows in (1, 4, 16, 64)]


def voluntary_switches(pids: list[int]) -> int:
    """Voluntary context switches so far, summed over every thread of `pids`."""
    total = 0
    for pid in pids:
        for status in Path(f"/proc/{pid}/task").glob("*/status"):
            try:
                text = status.read_text()
            except OSError:  # the thread ended meanwhile
                continue
            for line in text.splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    total += int(line.split()[1])
    return total


def batch_rows(metrics_url: str) -> tuple[float, float]:
    """(sum, count) of `crm_batch_rows` for churn, over all versions."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(metrics_url, timeout=10) as response:
        text = response.read().decode()
    total = count = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("model") != "churn":
                continue
            if sample.name == "crm_batch_rows_sum":
                total += sample.value
            elif sample.name == "crm_batch_rows_count":
                count += sample.value
    return total, count


def _row(delay: int, in_flight: int, row: tuple[float, ...]) -> str:
    req_s, cpu, rows, switches = row
    return f"{delay:>8} {in_flight:>9} {req_s:>8,.0f} {cpu:>11.0f} {rows:>8.2f} {switches:>13.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_batching", description=__doc__.split("\n")[0])
    parser.add_argument("--artifacts", type=Path, help="reuse these artifacts (default: train)")
    parser.add_argument("--delays", default="0,500", help="--batch-queue-delay-us values")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help="server --workers")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per run")
    args = parser.parse_args(argv)
    delays = [int(d) for d in args.delays.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-batching-") as tmp:
        work = Path(tmp)
        artifacts = args.artifacts or work / "artifacts"
        if args.artifacts is None:
            train_artifacts(artifacts, quick=False)
        workload = load_workload(artifacts)
        print("onnxruntime on the churn model, median us per call (1 thread):")
        print(f"{'rows':>5} {'warm':>8} {'cold':>8} {'cold/row':>9}")
        for rows, warm, cold in cache_effect(workload.churn_onnx):
            print(f"{rows:>5} {warm:>8.1f} {cold:>8.1f} {cold / rows:>9.1f}")
        case = next(c for c in build_cases(workload) if c.key == CASE)
        print(f"\n{case.label}, {args.workers} worker(s), servers alternated")
        head = ("delay us", "in flight", "req/s", "CPU us/call", "rows/run", "switches/call")
        print("{:>8} {:>9} {:>8} {:>11} {:>8} {:>13}".format(*head))
        failed = False
        runs: dict[tuple[int, int], list[tuple[float, float, float, float]]] = {}
        for repeat in range(args.repeats):
            for delay in delays:
                log = work / f"server-{delay}-{repeat}.log"
                extra = ("--batch-queue-delay-us", str(delay))
                with run_server(
                    artifacts, work / "data", args.workers, 1, log, extra_args=extra
                ) as server:
                    for in_flight, (clients, streams) in SHAPES.items():
                        before = batch_rows(server.metrics_url)
                        switched = voluntary_switches(server.worker_pids)
                        result = run_h2load(
                            server.target, case.method, case.request, clients, streams,
                            args.duration, metrics_url=server.metrics_url,
                            server_pids=server.worker_pids, probes=4,
                        )  # fmt: skip
                        switched = voluntary_switches(server.worker_pids) - switched
                        after = batch_rows(server.metrics_url)
                        if not result.ok:
                            failed = True
                            print(
                                f"{delay:>8} {in_flight:>9} LOAD FAILED: {'; '.join(result.failures)}"
                            )
                            continue
                        calls = after[1] - before[1]
                        rows = (after[0] - before[0]) / calls if calls else 0.0
                        per_call = switched / max(result.completed, 1)
                        row = (result.req_per_s, result.server_cpu_us_per_call, rows, per_call)
                        runs.setdefault((delay, in_flight), []).append(row)
                        print(_row(delay, in_flight, row))
        print(f"\nmedians of {args.repeats} runs")
        for (delay, in_flight), measured in sorted(runs.items()):
            medians = tuple(statistics.median(column) for column in zip(*measured, strict=True))
            print(_row(delay, in_flight, medians))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

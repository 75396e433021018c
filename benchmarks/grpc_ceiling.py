"""The Python gRPC ceiling: echo calls/s per server flavour x processes x calls in flight.

An echo call does no work, so these figures bound what any Python handler on this machine can
serve, and they decide grpc.aio vs the threaded server by measurement. Every run is checked at
the gRPC level (see h2load_grpc); a failed run prints FAILED, never a figure, and exits 1.

    python -m benchmarks.grpc_ceiling                      # full matrix, best of 2: ~2.5 min
    python -m benchmarks.grpc_ceiling --procs 1,2,4 --in-flight 32 --duration 10
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc

from benchmarks.echo_servers import ECHO_PATH, FLAVOURS, launch
from benchmarks.h2load_grpc import (
    H2loadUnavailable,
    ensure_h2load,
    machine_cpu_ticks,
    run_h2load,
)

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PAYLOAD = bytes(range(64))  # a small request; echo cost barely depends on size at this scale
NOISY_CORES = 0.15  # CPU others used during a run above which its figure is marked unreliable


def load_shape(in_flight: int, max_connections: int) -> tuple[int, int]:
    """(clients, streams per client) for `in_flight` calls: as many connections as allowed.

    SO_REUSEPORT balances connections, not calls, so a multi-process server needs several.
    """
    clients = max(d for d in range(1, min(in_flight, max_connections) + 1) if in_flight % d == 0)
    return clients, in_flight // clients


def busy_cores(sample_s: float = 1.0) -> float:
    """Cores busy machine-wide over a short sample: other work here lowers every figure."""
    busy_before, _ = machine_cpu_ticks()
    time.sleep(sample_s)
    busy_after, _ = machine_cpu_ticks()
    return (busy_after - busy_before) / os.sysconf("SC_CLK_TCK") / sample_s


def machine_info(h2load: str) -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    models = [
        line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line
    ]
    version = subprocess.run([h2load, "--version"], capture_output=True, text=True, check=False)
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "cpu_model": models[0] if models else platform.processor(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "h2load": version.stdout.strip(),
        "load_average_at_start": os.getloadavg(),
    }


def run_matrix(
    flavours: list[str],
    procs_list: list[int],
    in_flights: list[int],
    *,
    threads: int,
    duration_s: float,
    warmup_s: float,
    max_connections: int,
    repeat: int,
) -> list[dict[str, Any]]:
    """One server start per (flavour, procs); every in-flight level measured `repeat` times."""
    rows = []
    for flavour in flavours:
        for procs in procs_list:
            with launch(flavour, procs, threads) as server:
                for attempt, in_flight in [(a, n) for n in in_flights for a in range(repeat)]:
                    clients, streams = load_shape(in_flight, max_connections)
                    result = run_h2load(
                        server.target,
                        ECHO_PATH,
                        PAYLOAD,
                        clients,
                        streams,
                        duration_s,
                        warmup_s=warmup_s,
                        metrics_url=server.metrics_url,
                        expected_response=PAYLOAD,
                        server_pids=server.worker_pids,
                    )
                    row = {"flavour": flavour, "procs": procs, "threads": server.threads}
                    rows.append({**row, "attempt": attempt, **result.to_dict()})
                    print(f"{_label(row)}  {result.summary()}", flush=True)
    return rows


def _label(row: dict[str, Any]) -> str:
    threads = f" ({row['threads']} threads)" if row["threads"] else ""
    return f"{row['flavour']} x{row['procs']}{threads}"


def best_runs(rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Per (flavour, procs, in flight): the fastest run and all its runs; a failed run wins."""
    cells: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
    for row in rows:
        cells.setdefault((row["flavour"], row["procs"], row["in_flight"]), []).append(row)
    return [(min(runs, key=lambda r: (r["ok"], -r["req_per_s"])), runs) for runs in cells.values()]


def format_table(rows: list[dict[str, Any]]) -> str:
    """One line per cell: its best run, the req/s range over repeats (all verified)."""
    header = (
        f"{'server':<24} {'in flight':>9} {'c x m':>6} {'req/s':>8} {'range':>13} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'us/call':>7} {'h2load':>7} {'server cores':>13} {'others':>7}"
    )
    lines = [header, "-" * len(header)]
    for row, runs in best_runs(rows):
        shape = f"{row['clients']}x{row['streams']}"
        head = f"{_label(row):<24} {row['in_flight']:>9} {shape:>6}"
        if not row["ok"]:
            lines.append(f"{head} {'FAILED':>8}  ({len(row['failures'])} problems, see below)")
            continue
        rates = [r["req_per_s"] for r in runs]
        spread = f"{min(rates):,.0f}-{max(rates):,.0f}" if len(runs) > 1 else "-"
        per_worker = "+".join(f"{v:.2f}" for v in row["server_cpu_cores"].values())
        cpu_us = sum(row["server_cpu_cores"].values()) / row["req_per_s"] * 1e6
        lat = row["latency_ms"]
        noisy = " *" if row["other_cpu_cores"] > NOISY_CORES else ""
        lines.append(
            f"{head} {row['req_per_s']:>8,.0f} {spread:>13} {lat['p50']:>7.2f} {lat['p99']:>7.2f} "
            f"{cpu_us:>7.0f} "
            f"{row['loadgen_cpu_cores']:>7.2f} {per_worker:>13} {row['other_cpu_cores']:>7.2f}{noisy}"
        )
    if any(r["ok"] and r["other_cpu_cores"] > NOISY_CORES for r, _ in best_runs(rows)):
        lines.append(f"* other processes used > {NOISY_CORES} cores during the run: figure is low")
    return "\n".join(lines)


def _int_list(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flavours", default=",".join(FLAVOURS), help="aio,threaded")
    parser.add_argument("--procs", type=_int_list, default=[1, 2], help="e.g. 1,2")
    parser.add_argument("--in-flight", type=_int_list, default=[1, 16, 64], help="e.g. 1,16,64")
    parser.add_argument("--threads", type=int, default=8, help="threads per threaded process")
    parser.add_argument("--duration", type=float, default=4.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per run")
    parser.add_argument("--max-connections", type=int, default=8, help="h2load clients cap")
    parser.add_argument("--repeat", type=int, default=2, help="runs per cell; table shows best")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="directory for the JSON")
    args = parser.parse_args(argv)
    flavours = [f for f in args.flavours.split(",") if f]
    if not flavours or set(flavours) - set(FLAVOURS):
        parser.error(f"--flavours must be drawn from {','.join(FLAVOURS)}")
    if args.repeat < 1 or args.duration <= 0 or min(args.procs + args.in_flight, default=0) < 1:
        parser.error("--repeat, --duration, --procs and --in-flight must be positive")
    try:
        h2load = ensure_h2load()
    except H2loadUnavailable as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    started = dt.datetime.now(dt.UTC)
    background = busy_cores()
    if background > 0.2:
        print(f"warning: {background:.2f} cores already busy before the run", file=sys.stderr)
    try:
        rows = run_matrix(
            flavours,
            args.procs,
            args.in_flight,
            threads=args.threads,
            duration_s=args.duration,
            warmup_s=args.warmup,
            max_connections=args.max_connections,
            repeat=args.repeat,
        )
    except RuntimeError as err:  # an echo server that would not start or died mid-run
        print(f"error: {err}", file=sys.stderr)
        return 1
    report = {
        "benchmark": "grpc_ceiling",
        "started_at": started.isoformat(timespec="seconds"),
        "command": " ".join(["python -m benchmarks.grpc_ceiling", *sys.argv[1:]]),
        "machine": machine_info(h2load),
        "background_cpu_cores_before": round(background, 3),
        "settings": {
            "payload_bytes": len(PAYLOAD),
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "threads": args.threads,
            "max_connections": args.max_connections,
            "repeat": args.repeat,
            "h2load_threads": 1,
        },
        "runs": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"grpc_ceiling-{started:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(format_table(rows))
    print(f"\nJSON: {path}")
    failed = [r for r in rows if not r["ok"]]
    for row in failed:
        where = f"{_label(row)} at {row['in_flight']} in flight (run {row['attempt'] + 1})"
        print(f"FAILED {where}:", file=sys.stderr)
        for failure in row["failures"]:
            print(f"  - {failure}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

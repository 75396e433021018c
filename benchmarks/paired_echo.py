"""Single-customer calls against the same-core aio echo, in paired rounds.

A full `make bench-serving` measures the echo first and the server's cells minutes later; on a
shared host whose speed drifts that much, one server/echo ratio moved by up to 20% between runs
of the same code. Here the echo runs beside the server (both pinned to the first usable core;
each idle while the other is loaded) and every round loads the echo, then PredictChurn by id
and by features, at each of 16 and 64 in flight: a ratio compares runs seconds apart, and the
median over rounds is the figure.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.echo_servers import ECHO_PATH, launch
from benchmarks.grpc_ceiling import load_shape
from benchmarks.h2load_grpc import run_h2load

IN_FLIGHT = (16, 64)  # the comparison points
CASES = ("churn_id", "churn_features")


@dataclass(frozen=True)
class Paired:
    """One case at one concurrency over every round: req/s of the case and of the echo."""

    case: str
    in_flight: int
    server_req_per_s: list[float]
    echo_req_per_s: list[float]

    @property
    def ratios(self) -> list[float]:
        return [s / e for s, e in zip(self.server_req_per_s, self.echo_req_per_s, strict=True)]

    @property
    def median_ratio(self) -> float:
        return statistics.median(self.ratios)


def paired_rounds(
    *,
    target: str,
    server_pids: Sequence[int],
    metrics_url: str | None,
    cases: Sequence[Any],  # bench_serving.Case: key, method, request
    payload: bytes,
    in_flights: Sequence[int],
    rounds: int,
    duration_s: float,
    max_connections: int,
    wait_idle: Callable[[Sequence[int]], float],
    say: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Every run of every round, as rows (case, in_flight, round and the h2load result); a
    failed run is kept, and `summarise` leaves its round out."""
    chosen = [c for c in cases if c.key in CASES]
    points = [f for f in in_flights if f in IN_FLIGHT]
    rows: list[dict[str, Any]] = []
    if not chosen or not points or rounds < 1:
        return rows
    with launch("aio", 1) as echo:
        for round_ in range(rounds):
            for in_flight in points:
                clients, streams = load_shape(in_flight, max_connections)
                runs = [("echo_aio", echo.target, ECHO_PATH, payload, echo, payload)]
                runs += [(c.key, target, c.method, c.request, None, None) for c in chosen]
                for key, where, path, body, echo_server, expected in runs:
                    pids = echo_server.worker_pids if echo_server else server_pids
                    wait_idle(pids)
                    result = run_h2load(
                        where, path, body, clients, streams, duration_s, warmup_s=0.0,
                        metrics_url=echo_server.metrics_url if echo_server else metrics_url,
                        expected_response=expected, server_pids=pids,
                    ).to_dict()  # fmt: skip
                    label = f"paired round {round_ + 1}/{rounds} @{in_flight} {key}"
                    rows.append({**result, "case": key, "label": label, "round": round_})
                    brief = f"{result['req_per_s']:,.0f} req/s" if result["ok"] else "FAILED"
                    say(f"  {label:<40} {brief}")
    return rows


def summarise(rows: Sequence[dict[str, Any]]) -> list[Paired]:
    """Per case and concurrency, the rounds in which the echo and the case both succeeded."""
    out = []
    for in_flight in IN_FLIGHT:
        echo = {
            r["round"]: r["req_per_s"]
            for r in rows
            if r["case"] == "echo_aio" and r["in_flight"] == in_flight and r["ok"]
        }
        for case in CASES:
            mine = {
                r["round"]: r["req_per_s"]
                for r in rows
                if r["case"] == case and r["in_flight"] == in_flight and r["ok"]
            }
            both = sorted(set(echo) & set(mine))
            if both:
                out.append(
                    Paired(case, in_flight, [mine[k] for k in both], [echo[k] for k in both])
                )
    return out

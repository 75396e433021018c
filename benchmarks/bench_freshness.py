"""Fresh-scores benchmark: what keeping by-id features as of today costs.

1. The daily refresh: every customer's features recomputed as of a new day in one vectorised
   crm.features pass over a synthetic history of `--customers` customers (the server's
   LineBook.everyone): the first pass (lines prepared, then features) and the daily one (the
   prepared lines are kept; only features), plus patching one ingested customer into a
   snapshot of that size.
2. By-id req/s: PredictChurn by customer_id under h2load against the same trained artifacts
   served two ways, alternated `--rounds` times: "frozen" (the features artifact without its
   history: the rows training wrote, as before fresh scores) and "fresh" (rows as of today).
   The goal: fresh within 10% of frozen.

    python -m benchmarks.bench_freshness                          # 1M customers, ~3 minutes
    python -m benchmarks.bench_freshness --customers 100000 --rounds 1 --duration 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.bench_serving import RESULTS_DIR, code_revision, run_server, train_artifacts
from benchmarks.grpc_ceiling import machine_info
from benchmarks.h2load_grpc import ensure_h2load, run_h2load
from crm import features as feat
from crm.artifacts import MANIFEST_FILE
from crm.history import HISTORY_FILE
from crm.v1 import churn_pb2
from server.freshness.book import LineBook
from server.freshness.clock import SECONDS_PER_DAY
from server.freshness.lines import StoredLine
from server.freshness.state import FreshFeatures, fresh_snapshot

CATEGORIES = ("home", "kitchen", "garden", "toys", "party", "stationery", "bags", "other")
METHOD = "/crm.v1.ChurnService/PredictChurn"


def synthetic_history(customers: int, lines_per_customer: int, seed: int = 7) -> pd.DataFrame:
    """`customers` x `lines_per_customer` lines over 540 days, two lines per invoice."""
    rng = np.random.default_rng(seed)
    n = customers * lines_per_customer
    cust = np.repeat(np.arange(customers), lines_per_customer)
    invoice = np.arange(n) // 2
    start = pd.Timestamp("2023-01-01").value // 1_000_000_000
    t = start + rng.integers(0, 540 * SECONDS_PER_DAY, n)
    t = t[invoice * 2]  # both lines of an invoice share its time
    stock = rng.integers(0, 2000, n)
    return pd.DataFrame(
        {
            feat.INVOICE: pd.Series(invoice).astype(str).to_numpy(dtype=object),
            feat.STOCK_CODE: pd.Series(stock).astype(str).radd("S").to_numpy(dtype=object),
            feat.DESCRIPTION: "",
            feat.QUANTITY: rng.integers(1, 12, n).astype(np.float64),
            feat.INVOICE_DATE: pd.to_datetime(t, unit="s"),
            feat.PRICE: rng.uniform(0.5, 20.0, n).round(2),
            feat.CUSTOMER_ID: pd.Series(cust).astype(str).to_numpy(dtype=object),
            feat.COUNTRY: "United Kingdom",
            feat.CATEGORY: np.asarray(CATEGORIES, dtype=object)[stock % len(CATEGORIES)],
        }
    )


def daily_refresh(customers: int, lines_per_customer: int) -> dict[str, Any]:
    built = time.perf_counter()
    history = synthetic_history(customers, lines_per_customer)
    names = feat.feature_names(sorted(CATEGORIES))
    book = LineBook(history, names)
    setup_s = time.perf_counter() - built
    day = pd.Timestamp("2024-06-25").value // 1_000_000_000
    started = time.perf_counter()
    ids, values = book.everyone(day)
    first_s = time.perf_counter() - started
    daily = []
    for k in (1, 2, 3):
        started = time.perf_counter()
        ids, values = book.everyone(day + k * SECONDS_PER_DAY)
        daily.append(time.perf_counter() - started)
    snapshot = fresh_snapshot(ids, values, names, day + 3 * SECONDS_PER_DAY)
    line = StoredLine("X1", 1, "S1", "", 2.0, (day + 2 * SECONDS_PER_DAY) * 10**9, 3.0, "0", "", "")
    started = time.perf_counter()
    changed = book.add([line])
    got_ids, rows = book.rows(changed, snapshot.as_of_s)
    FreshFeatures.patched(snapshot, got_ids, rows)
    patch_s = time.perf_counter() - started
    return {
        "customers": len(ids),
        "lines": len(history),
        "build_book_s": round(setup_s, 2),
        "first_refresh_s": round(first_s, 2),
        "daily_refresh_s": [round(x, 2) for x in daily],
        "ingest_one_line_s": round(patch_s, 4),
    }


def frozen_copy(artifacts: Path, out: Path) -> Path:
    """The artifacts with the features artifact's history taken out: the server then serves
    the rows training wrote, as it did before fresh scores."""
    shutil.copytree(artifacts, out)
    for version_dir in (out / "features").iterdir():
        manifest = json.loads((version_dir / MANIFEST_FILE).read_text())
        manifest["files"].pop(HISTORY_FILE, None)
        (version_dir / MANIFEST_FILE).write_text(json.dumps(manifest))
        (version_dir / HISTORY_FILE).unlink(missing_ok=True)
    return out


def by_id_rounds(artifacts: Path, rounds: int, duration: float, in_flight: int) -> dict[str, Any]:
    ensure_h2load()
    with np.load(
        max((artifacts / "features").iterdir(), key=lambda p: int(p.name)) / "snapshot.npz"
    ) as data:
        customer = str(data["customer_ids"][0])
    request = churn_pb2.PredictChurnRequest(customers=[{"customer_id": customer}])
    payload = request.SerializeToString()
    work = Path(tempfile.mkdtemp(prefix="bench-fresh-"))
    frozen = frozen_copy(artifacts, work / "frozen")
    runs: dict[str, list[float]] = {"frozen": [], "fresh": []}
    for _ in range(rounds):
        for mode, root in (("frozen", frozen), ("fresh", artifacts)):
            data_dir = Path(tempfile.mkdtemp(dir=work))
            with run_server(root, data_dir, 1, 1, work / f"{mode}.log") as server:
                result = run_h2load(
                    server.target, METHOD, payload, 4, max(1, in_flight // 4), duration,
                    metrics_url=server.metrics_url, server_pids=server.worker_pids,
                )  # fmt: skip
            if result.failures:
                raise RuntimeError(f"{mode}: {result.failures}")
            runs[mode].append(round(result.req_per_s, 1))
    frozen_rps, fresh_rps = (statistics.median(runs[m]) for m in ("frozen", "fresh"))
    shutil.rmtree(work, ignore_errors=True)
    return {
        "in_flight": in_flight,
        "runs_req_per_s": runs,
        "median_frozen": frozen_rps,
        "median_fresh": fresh_rps,
        "fresh_over_frozen": round(fresh_rps / frozen_rps, 3),
        "goal": ">= 0.9",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--lines-per-customer", type=int, default=4)
    parser.add_argument("--artifacts", type=Path, help="trained artifacts (default: train some)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--skip-serving", action="store_true")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"revision": code_revision(), "machine": machine_info(ensure_h2load())}
    refresh = daily_refresh(args.customers, args.lines_per_customer)
    report["daily_refresh"] = refresh
    print(f"daily refresh: {json.dumps(refresh)}", flush=True)
    if not args.skip_serving:
        artifacts = args.artifacts
        if artifacts is None:
            artifacts = Path(tempfile.mkdtemp(prefix="bench-fresh-art-")) / "artifacts"
            train_artifacts(artifacts, quick=True)
        serving = by_id_rounds(artifacts, args.rounds, args.duration, args.in_flight)
        report["by_id"] = serving
        print(f"by-id PredictChurn: {json.dumps(serving)}", flush=True)
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = RESULTS_DIR / f"bench_freshness-{stamp}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Training benchmark: the real-shaped apparel export, then >= 1,000,000 synthetic lines.

Part 1 (`--only apparel`): training/data/apparel_online_retail.csv with a quarterly churn
horizon (92 days) and a monthly spend horizon (30 days); prints every metric of the model next
to the naive and BG/NBD (x Gamma-Gamma) baselines and checks the targets: churn ROC AUC and
Brier at least as good as BG/NBD's, spend Spearman and RMSE better than BG/NBD x GG's, spend
predicted total within +-10% of the actual.

Part 2 (`--only synthetic`): prints wall and CPU seconds per stage, total wall time, peak RSS (trainer and lineage worker)
and the load average, and exits 1 when a target is missed: >= 1,000,000 lines, < 180 s wall,
< 4 GiB peak RSS. The wall target assumes the 2 cores are otherwise idle: compare the load
average printed before and after with 2. Run: `python benchmarks/bench_train.py [--customers N]`.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import training  # noqa: F401  (sets thread-runtime defaults before numpy loads)
from training.pipeline import RunConfig, run, summary_table
from training.synthetic import SyntheticConfig

TARGET_LINES = 1_000_000
TARGET_SECONDS = 180.0
TARGET_RSS_BYTES = 4 * 1024**3


def _peak_rss_bytes(who: int) -> int:
    return resource.getrusage(who).ru_maxrss * 1024  # Linux reports KiB


APPAREL = Path(__file__).resolve().parents[1] / "training" / "data" / "apparel_online_retail.csv"


def apparel(threads: int) -> list[str]:
    """Train on the apparel export; print the table and the targets; return what missed."""
    print(f"== apparel export: {APPAREL.name}, churn 92 days, spend 30 days")
    with tempfile.TemporaryDirectory() as out:
        result = run(
            RunConfig(
                out=Path(out),
                data=APPAREL,
                churn_days=92,
                horizon_days=30,
                threads=threads,
                command="python -m training --data training/data/apparel_online_retail.csv "
                "--churn-days 92 --horizon-days 30",
            ),
            lambda line: print(line, flush=True),
        )
    print(summary_table(result.models, result.skipped))
    missed = [f"{name} skipped: {why}" for name, why in result.skipped.items()]
    rows = {(n, r.metric): r for n, m in result.models.items() for r in m.summary}
    checks = [
        ("churn", "roc_auc", lambda r: r.model >= r.bgnbd, "churn ROC AUC >= BG/NBD"),
        ("churn", "brier", lambda r: r.model <= r.bgnbd, "churn Brier <= BG/NBD"),
        ("spend", "spearman", lambda r: r.model > r.bgnbd, "spend Spearman > BG/NBD x GG"),
        ("spend", "rmse", lambda r: r.model < r.bgnbd, "spend RMSE < BG/NBD x GG"),
        ("spend", "total_ratio", lambda r: abs(r.model - 1) <= 0.1, "spend total within +-10%"),
    ]
    for model, metric, ok, label in checks:
        row = rows.get((model, metric))
        met = row is not None and bool(ok(row))
        print(f"target {label:<32} {'met' if met else 'MISSED'}")
        if not met:
            missed.append(label)
    return missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=46_000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--only", choices=("apparel", "synthetic"), help="run one part")
    args = parser.parse_args(argv)
    missed: list[str] = []
    if args.only != "synthetic":
        missed += apparel(args.threads)
    if args.only != "apparel":
        missed += synthetic(args)
    print("targets: " + ("met" if not missed else "MISSED: " + "; ".join(missed)))
    return 1 if missed else 0


def synthetic(args: argparse.Namespace) -> list[str]:
    print(f"== synthetic: {args.customers:,} customers, {args.days} days")

    lines_seen: list[int] = []

    def progress(line: str) -> None:
        print(line, flush=True)
        if "] synthetic" in line:
            lines_seen.append(
                int(line.split("synthetic", 1)[1].split("lines", maxsplit=1)[0].replace(",", ""))
            )

    synthetic = SyntheticConfig(customers=args.customers, days=args.days, seed=args.seed)
    load_before = os.getloadavg()
    print(
        f"cpus: {os.cpu_count()}, threads: {args.threads}, customers: {args.customers:,}, "
        f"load average before: {load_before[0]:.1f}"
    )
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        result = run(RunConfig(out=Path(out), synthetic=synthetic, threads=args.threads), progress)
    wall = time.perf_counter() - start
    rss_self = _peak_rss_bytes(resource.RUSAGE_SELF)
    rss_child = result.lineage_max_rss_kib * 1024
    lines = lines_seen[0] if lines_seen else 0

    print(f"\n{'stage':<14}{'wall s':>8}{'cpu s':>8}")
    for stage, seconds in result.timings.items():
        print(f"{stage:<14}{seconds:8.1f}{result.cpu_timings.get(stage, 0.0):8.1f}")
    cpu = sum(result.cpu_timings.values())
    print(f"{'total':<14}{wall:8.1f}{cpu:8.1f}")
    print(f"lineage worker (in parallel): {result.lineage_cpu_seconds:.1f} cpu s")
    print(f"load average after: {os.getloadavg()[0]:.1f} (1 min), {os.getloadavg()[1]:.1f} (5 min)")
    print(
        f"lines: {lines:,}; peak RSS: {rss_self / 2**20:,.0f} MiB (trainer), "
        f"{rss_child / 2**20:,.0f} MiB (lineage worker)"
    )
    missed = []
    if lines < TARGET_LINES:
        missed.append(f"lines {lines:,} < {TARGET_LINES:,} (raise --customers)")
    if wall >= TARGET_SECONDS:
        missed.append(f"wall {wall:.1f} s >= {TARGET_SECONDS:.0f} s")
    if max(rss_self, rss_child) >= TARGET_RSS_BYTES:
        missed.append("peak RSS >= 4 GiB")
    return missed


if __name__ == "__main__":
    sys.exit(main())

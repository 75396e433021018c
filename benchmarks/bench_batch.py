"""Bulk scoring benchmark (issue 22): crm-batch rows/s, local vs Ray vs raw onnxruntime.

In one run, on the artifacts given:
- raw onnxruntime: the three models crm-batch runs per customer (churn, spend, segmentation),
  one session each, one thread, 65,536-row calls on an in-memory matrix: the ceiling a
  bulk scorer on one core cannot pass;
- `crm-batch --engine local` with one worker (same resources as the raw figure) and with
  every core, and `--engine ray` on a local Ray, by feature rows (Parquet in, Parquet out) and
  by raw transaction lines (synthetic, `--line-customers` customers);
- peak RSS of the largest process of a local run at N/10 and N rows (bounded memory: the
  same peak whatever the input's size);
- the model question: the churn model's shape (300 trees, depth 5, 40 features) as
  onnxruntime's TreeEnsemble (onnxmltools export, as training does) against native xgboost
  `inplace_predict` on the same trees, 1,000-row batches, one thread, outputs compared.

Feature rows are the snapshot's rows drawn with replacement under new ids. Prints a table
and writes benchmarks/results/bench_batch-<time>.json. Not a test: figures depend on the
machine and its load (printed).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from server.models.runtime import session_options  # noqa: E402
from server.models.snapshot import SNAPSHOT_FILE  # noqa: E402

MODELS = {"churn": "probability", "spend": "spend", "segmentation": "cluster"}
CALL_ROWS = 65_536
ROW_GROUP = 131_072
# Runs a command and prints the peak RSS (KiB) of its largest process: a fresh parent per run,
# so the figure is this run's alone.
_RSS_WRAPPER = (
    "import resource, subprocess, sys; "
    "code = subprocess.run(sys.argv[1:]).returncode; "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)"
)


def latest(artifacts: Path, name: str) -> tuple[Path, dict]:
    version = max((artifacts / name).iterdir(), key=lambda p: int(p.name))
    return version, json.loads((version / "manifest.json").read_text())


def snapshot(artifacts: Path) -> tuple[np.ndarray, list[str]]:
    version, _ = latest(artifacts, "features")
    with np.load(version / SNAPSHOT_FILE) as data:
        return data["values"].astype(np.float32), [str(n) for n in data["feature_names"]]


def write_features(artifacts: Path, rows: int, path: Path, seed: int = 1) -> None:
    """`rows` feature rows drawn from the snapshot, in row groups of ROW_GROUP rows (a
    reader holds one whole group, so the group size, not the file's, bounds its memory)."""
    values, names = snapshot(artifacts)
    rng = np.random.default_rng(seed)
    writer = None
    for start in range(0, rows, 1_000_000):
        n = min(1_000_000, rows - start)
        block = values[rng.integers(0, len(values), n)]
        table = pa.table(
            {"customer_id": [f"c{i}" for i in range(start, start + n)]}
            | {name: block[:, j] for j, name in enumerate(names)}
        )
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=ROW_GROUP)
    assert writer is not None
    writer.close()


def write_lines(customers: int, path: Path) -> str:
    """Synthetic transaction lines of `customers` customers; returns the as-of time."""
    from training.synthetic import SyntheticConfig, generate

    data = generate(SyntheticConfig(customers=customers, days=730, seed=5, dirt=False))
    lines = data.lines
    lines.to_parquet(path, index=False)
    last = pd.to_datetime(lines["InvoiceDate"]).max()
    return (last.normalize() + pd.Timedelta(days=1)).isoformat()


def raw_onnxruntime(artifacts: Path, rows: int) -> dict[str, float]:
    """Rows/s of the three models (and of churn alone), one thread, in-memory matrix."""
    values, names = snapshot(artifacts)
    rng = np.random.default_rng(2)
    matrix = values[rng.integers(0, len(values), min(rows, 1_000_000))]
    out = {}
    total = 0.0
    for model, output in MODELS.items():
        version, manifest = latest(artifacts, model)
        x = np.ascontiguousarray(matrix[:, [names.index(f) for f in manifest["features"]]])
        session = ort.InferenceSession(
            str(version / "model.onnx"), session_options(1), providers=["CPUExecutionProvider"]
        )
        t0 = time.perf_counter()
        for start in range(0, len(x), CALL_ROWS):
            session.run([output], {"features": x[start : start + CALL_ROWS]})
        seconds = time.perf_counter() - t0
        out[f"{model}_rows_per_s"] = len(x) / seconds
        total += seconds
    out["all_three_rows_per_s"] = len(matrix) / total
    return out


def crm_batch(args: list[str]) -> dict[str, float]:
    """Run crm-batch in a child process: wall seconds, the rows/s it printed, peak RSS of
    its largest process (the CLI or one of its workers)."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _RSS_WRAPPER, sys.executable, "-m", "batch", "--quiet", *args],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"crm-batch {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    rows = int(re.search(r"rows: ([\d,]+)", proc.stderr).group(1).replace(",", ""))
    rss = int(proc.stdout.strip().splitlines()[-1])
    return {
        "rows": rows,
        "wall_s": wall,
        "rows_per_s": rows / wall,
        "peak_rss_mb": rss / 1024,
        "summary": proc.stderr.strip().splitlines()[-4:],
    }


def tree_question(artifacts: Path, batch: int = 1000, rows: int = 200_000) -> dict[str, float]:
    """onnxruntime TreeEnsemble vs xgboost inplace_predict, same trees, one thread."""
    import xgboost as xgb
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    from training.models.base import booster_options
    from training.models.churn import ChurnParams
    from training.onnx_graph import OPSET

    values, names = snapshot(artifacts)
    _, manifest = latest(artifacts, "churn")
    x = values[:, [names.index(f) for f in manifest["features"]]]
    rng = np.random.default_rng(3)
    y = (x[:, 0] + rng.normal(0, x[:, 0].std(), len(x)) > np.median(x[:, 0])).astype(int)
    model = xgb.XGBClassifier(**booster_options(ChurnParams(threads=1)), reg_lambda=1.0)
    model.fit(x, y)
    onnx_model = convert_xgboost(
        model, initial_types=[("features", FloatTensorType([None, x.shape[1]]))], target_opset=OPSET
    )
    session = ort.InferenceSession(
        onnx_model.SerializeToString(), session_options(1), providers=["CPUExecutionProvider"]
    )
    booster = model.get_booster()
    booster.set_param({"nthread": 1})
    data = x[rng.integers(0, len(x), rows)]
    chunks = [np.ascontiguousarray(data[i : i + batch]) for i in range(0, rows, batch)]
    label = session.get_outputs()[1].name

    def timed(fn) -> float:
        fn(chunks[0])  # warm
        t0 = time.perf_counter()
        for c in chunks:
            fn(c)
        return rows / (time.perf_counter() - t0)

    onnx_rate = timed(lambda c: session.run([label], {"features": c}))
    native_rate = timed(booster.inplace_predict)
    a = np.asarray(session.run([label], {"features": chunks[0]})[0])
    a = np.array([r[1] for r in a]) if a.dtype == object else a[:, 1]
    b = booster.inplace_predict(chunks[0])
    return {
        "trees": int(model.n_estimators),
        "depth": int(model.max_depth),
        "features": int(x.shape[1]),
        "onnxruntime_rows_per_s": onnx_rate,
        "xgboost_inplace_rows_per_s": native_rate,
        "onnxruntime_over_xgboost": onnx_rate / native_rate,
        "max_abs_diff": float(np.abs(a - b).max()),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--artifacts", type=Path, default=REPO / "artifacts")
    p.add_argument("--rows", type=int, default=1_000_000, help="customers by feature rows")
    p.add_argument("--line-customers", type=int, default=50_000, help="customers by raw lines")
    p.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--skip-ray", action="store_true")
    args = p.parse_args()
    artifacts = args.artifacts.resolve()
    result: dict = {
        "started": datetime.now(UTC).isoformat(),
        "rows": args.rows,
        "line_customers": args.line_customers,
        "workers": args.workers,
        "cores": len(os.sched_getaffinity(0)),
        "load_average_at_start": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        d = Path(tmp)
        small = max(args.rows // 10, 1)
        write_features(artifacts, args.rows, d / "features.parquet")
        write_features(artifacts, small, d / "features-small.parquet")
        as_of = write_lines(args.line_customers, d / "lines.parquet")
        base = ["--artifacts", str(artifacts)]
        feats = ["--input", str(d / "features.parquet"), *base]
        lines = ["--input", str(d / "lines.parquet"), "--as-of", as_of, *base]
        result["raw_onnxruntime_1_thread"] = raw_onnxruntime(artifacts, args.rows)
        runs = {
            "features_local_1_worker": [*feats, "--output", str(d / "o1.parquet"), "--workers", "1"],
            "features_local": [*feats, "--output", str(d / "o2.parquet"), "--workers", str(args.workers)],
            "features_local_small": [
                "--input", str(d / "features-small.parquet"), *base,
                "--output", str(d / "o3.parquet"), "--workers", str(args.workers),
            ],
            "lines_local": [*lines, "--output", str(d / "o4.parquet"), "--workers", str(args.workers)],
        }  # fmt: skip
        if not args.skip_ray:
            runs["features_ray"] = [*feats, "--output", str(d / "o5.parquet"), "--engine", "ray"]
            runs["lines_ray"] = [*lines, "--output", str(d / "o6.parquet"), "--engine", "ray"]
        for name, run_args in runs.items():
            print(f"running {name} ...", file=sys.stderr, flush=True)
            result[name] = crm_batch(run_args)
        result["tree_question"] = tree_question(artifacts)
    result["load_average_at_end"] = os.getloadavg()
    report(result)
    out = REPO / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (out / f"bench_batch-{stamp}.json").write_text(json.dumps(result, indent=2, default=str))
    print(f"results: benchmarks/results/bench_batch-{stamp}.json")
    return 0


def report(r: dict) -> None:
    raw = r["raw_onnxruntime_1_thread"]["all_three_rows_per_s"]
    one = r["features_local_1_worker"]["rows_per_s"]
    local = r["features_local"]["rows_per_s"]
    print(f"\n== crm-batch, {r['rows']:,} customers by feature rows ({r['cores']} cores, "
          f"load {r['load_average_at_start'][0]:.1f} at start, {r['load_average_at_end'][0]:.1f} at end)")  # fmt: skip
    print(f"raw onnxruntime, 3 models, 1 thread      {raw:>12,.0f} rows/s "
          f"(churn alone {r['raw_onnxruntime_1_thread']['churn_rows_per_s']:,.0f})")  # fmt: skip
    print(
        f"local, 1 worker                          {one:>12,.0f} rows/s  = {one / raw:.2f} of raw (goal >= 0.8)"
    )
    print(f"local, {r['workers']} workers                         {local:>12,.0f} rows/s  = "
          f"{local / (raw * r['workers']):.2f} of raw x {r['workers']}")  # fmt: skip
    if "features_ray" in r:
        ray = r["features_ray"]["rows_per_s"]
        print(
            f"ray (local cluster)                      {ray:>12,.0f} rows/s  = {ray / local:.2f} of local (goal >= 0.7)"
        )
    lines = r["lines_local"]
    print(f"\n== by raw lines, {r['line_customers']:,} customers")
    print(f"local                                    {lines['rows_per_s']:>12,.0f} customers/s")
    if "lines_ray" in r:
        lr = r["lines_ray"]["rows_per_s"]
        print(
            f"ray                                      {lr:>12,.0f} customers/s  = {lr / lines['rows_per_s']:.2f} of local"
        )
    small, big = r["features_local_small"], r["features_local"]
    print(f"\n== peak RSS of the largest process, local engine: {small['rows']:,} rows "
          f"{small['peak_rss_mb']:,.0f} MB, {big['rows']:,} rows {big['peak_rss_mb']:,.0f} MB")  # fmt: skip
    t = r["tree_question"]
    print(
        f"\n== churn-shaped trees ({t['trees']} trees, depth {t['depth']}, {t['features']} features), 1k-row batches, 1 thread"
    )
    print(f"onnxruntime TreeEnsemble                 {t['onnxruntime_rows_per_s']:>12,.0f} rows/s")
    print(f"xgboost inplace_predict                  {t['xgboost_inplace_rows_per_s']:>12,.0f} rows/s  "
          f"(onnxruntime = {t['onnxruntime_over_xgboost']:.2f}x; max |diff| {t['max_abs_diff']:.1e})")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())

"""Bulk scoring benchmark (issue 22): crm-batch rows/s, local vs Ray vs raw onnxruntime.

In one run, on the artifacts given:
- raw models: the three models crm-batch runs per customer (churn, spend, segmentation),
  one thread, 65,536-row calls on an in-memory matrix, in onnxruntime alone and as the server
  runs them (crm.trees for the tree models): the latter is the ceiling a bulk scorer on one
  core cannot pass;
- `crm-batch --engine local` with one worker (same resources as the raw figure) and with
  every core, and `--engine ray` by feature rows (Parquet in, Parquet out) and by raw
  transaction lines (synthetic, `--line-customers` customers): joining a Ray head this
  benchmark starts on this machine (every core; how a Ray deployment runs: started once,
  joined by each job; after the head's first job, reported apart, `RUNS` runs, median, as for
  the local engine on every core, the figure it is compared with), and once starting its own
  local Ray inside the command (cold: Ray's start-up counted);
- peak RSS of the largest process of a local run at N/10 and N rows (bounded memory: the
  same peak whatever the input's size);
- the model question: the churn model's shape (300 trees, depth 5, 40 features) trained on
  the snapshot, 1,000-row batches, one thread, outputs compared: native xgboost
  `inplace_predict`, onnxruntime's TreeEnsembleClassifier (the onnxmltools export) and
  TreeEnsembleRegressor + Sigmoid (training's fold_platt_into_trees form), and crm.trees on
  that same graph; then the trained churn model.onnx, onnxruntime vs crm.trees (the server's
  two engines). `--trees-only` runs just this part.

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
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from crm import trees  # noqa: E402
from crm.columns import INVOICE_DATE  # noqa: E402
from server.models.runtime import new_session  # noqa: E402
from server.models.snapshot import SNAPSHOT_FILE  # noqa: E402
from tests.rayhead import ray_head  # noqa: E402

MODELS = {"churn": "probability", "spend": "spend", "segmentation": "cluster"}
CALL_ROWS = 65_536
ROUNDS = 3
ROW_GROUP = 131_072
RUNS = 3  # runs of each engine on every core (median): single runs here vary by ~10%
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
    last = pd.to_datetime(lines[INVOICE_DATE]).max()
    return (last.normalize() + pd.Timedelta(days=1)).isoformat()


def _session(graph: bytes) -> ort.InferenceSession:
    return new_session(graph, 1)


def _runner(raw: bytes, output: str, *, engine: bool) -> Callable[[np.ndarray], Any]:
    """One call on `raw`: onnxruntime's whole graph, or (`engine`) crm.trees when it takes it."""
    if engine:
        try:
            return trees.scorer(raw, _session).run
        except trees.NotEligible:
            pass
    whole = _session(raw)
    return lambda c: whole.run([output], {"features": c})


def raw_models(artifacts: Path, rows: int, *, engine: bool) -> dict[str, float]:
    """Rows/s of the three models (and of churn alone), one thread, in-memory matrix: in
    onnxruntime alone, or (`engine`) as the server runs them (crm.trees for a graph it takes)."""
    values, names = snapshot(artifacts)
    rng = np.random.default_rng(2)
    matrix = values[rng.integers(0, len(values), min(rows, 1_000_000))]
    out = {}
    total = 0.0
    for model, output in MODELS.items():
        version, manifest = latest(artifacts, model)
        x = np.ascontiguousarray(matrix[:, [names.index(f) for f in manifest["features"]]])
        run = _runner((version / "model.onnx").read_bytes(), output, engine=engine)
        t0 = time.perf_counter()
        for start in range(0, len(x), CALL_ROWS):
            run(x[start : start + CALL_ROWS])
        seconds = time.perf_counter() - t0
        out[f"{model}_rows_per_s"] = len(x) / seconds
        total += seconds
    out["all_three_rows_per_s"] = len(matrix) / total
    return out


def crm_batch(args: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """Run crm-batch in a child process: wall seconds, the rows/s it printed, peak RSS of
    its largest process (the CLI or one of its workers)."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _RSS_WRAPPER, sys.executable, "-m", "batch", "--quiet", *args],
        cwd=REPO, capture_output=True, text=True, check=False, env=env,
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


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ranked = sorted(runs, key=lambda r: r["rows_per_s"])
    return ranked[len(ranked) // 2] | {"runs_rows_per_s": [r["rows_per_s"] for r in runs]}


def _rates(engines: dict[str, Callable[[np.ndarray], Any]], chunks: list[np.ndarray]) -> dict:
    """Rows/s of each engine over every chunk: best of ROUNDS rounds, the engines taking turns
    within a round (a shared machine's load then falls on all of them alike)."""
    rows = sum(len(c) for c in chunks)
    best = dict.fromkeys(engines, 0.0)
    for _ in range(ROUNDS):
        for name, fn in engines.items():
            fn(chunks[0])  # warm
            t0 = time.perf_counter()
            for c in chunks:
                fn(c)
            best[name] = max(best[name], rows / (time.perf_counter() - t0))
    return best


def tree_question(artifacts: Path, batch: int = 1000, rows: int = 200_000) -> dict[str, Any]:
    """Native xgboost `inplace_predict` vs onnxruntime vs crm.trees on the same trees, one
    thread, `batch`-row calls: the churn model's shape trained on the snapshot (the xgboost
    booster is needed for the native figure), then the trained churn model.onnx itself."""
    import xgboost as xgb
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    from training.models.base import booster_options
    from training.models.churn import ChurnParams
    from training.onnx_graph import OPSET, fold_platt_into_trees

    values, names = snapshot(artifacts)
    version, manifest = latest(artifacts, "churn")
    x = values[:, [names.index(f) for f in manifest["features"]]]
    rng = np.random.default_rng(3)
    y = (x[:, 0] + rng.normal(0, x[:, 0].std(), len(x)) > np.median(x[:, 0])).astype(int)
    model = xgb.XGBClassifier(**booster_options(ChurnParams(threads=1)), reg_lambda=1.0)
    model.fit(x, y)
    converted = convert_xgboost(
        model, initial_types=[("features", FloatTensorType([None, x.shape[1]]))], target_opset=OPSET
    )
    classifier = _session(converted.SerializeToString())
    # training's own rewrite (fold_platt_into_trees, identity calibration): one
    # TreeEnsembleRegressor + Sigmoid, the form crm.trees takes
    folded = fold_platt_into_trees(converted, 1.0, 0.0, "probability").SerializeToString()
    regressor = _session(folded)
    evaluator = trees.scorer(folded, _session)
    booster = model.get_booster()
    booster.set_param({"nthread": 1})
    data = x[rng.integers(0, len(x), rows)]
    chunks = [np.ascontiguousarray(data[i : i + batch]) for i in range(0, rows, batch)]
    label = classifier.get_outputs()[1].name
    rates = _rates(
        {
            "xgboost_inplace": booster.inplace_predict,
            "onnxruntime_classifier": lambda c: classifier.run([label], {"features": c}),
            "onnxruntime_regressor": lambda c: regressor.run(None, {"features": c}),
            "crm_trees": evaluator.run,
        },
        chunks,
    )
    probe = chunks[0]
    native = booster.inplace_predict(probe)
    ours = evaluator.run(probe)["probability"].reshape(-1)
    by_ort = regressor.run(None, {"features": probe})[0].reshape(-1)
    # the trained churn model.onnx: trees plus calibration and BG/NBD, as the server runs it
    raw = (version / "model.onnx").read_bytes()
    whole, served = _session(raw), trees.scorer(raw, _session)
    model_chunks = chunks  # the churn model reads the same 40 features
    model_rates = _rates(
        {
            "onnxruntime": lambda c: whole.run(None, {"features": c}),
            "crm_trees": served.run,
        },
        model_chunks,
    )
    equal = all(
        trees.disagreement(
            served.run(c),
            dict(zip(served.split.output_names, whole.run(None, {"features": c}), strict=True)),
        )
        is None
        for c in model_chunks[:20]
    )
    native_rate = rates["xgboost_inplace"]
    return {
        "trees": int(model.n_estimators),
        "depth": int(model.max_depth),
        "features": int(x.shape[1]),
        "batch_rows": batch,
        "rows": rows,
        **{f"{k}_rows_per_s": v for k, v in rates.items()},
        **{f"{k}_over_xgboost": v / native_rate for k, v in rates.items()},
        "crm_trees_vs_xgboost_max_abs_diff": float(np.abs(ours - native).max()),
        "crm_trees_bitwise_equal_onnxruntime": bool(np.array_equal(ours, by_ort)),
        "churn_model": {
            "version": int(version.name),
            **{f"{k}_rows_per_s": v for k, v in model_rates.items()},
            "crm_trees_over_onnxruntime": model_rates["crm_trees"] / model_rates["onnxruntime"],
            "bitwise_equal_first_20_batches": equal,
        },
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--artifacts", type=Path, default=REPO / "artifacts")
    p.add_argument("--rows", type=int, default=1_000_000, help="customers by feature rows")
    p.add_argument("--line-customers", type=int, default=50_000, help="customers by raw lines")
    p.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--skip-ray", action="store_true")
    p.add_argument(
        "--trees-only",
        action="store_true",
        help="only the trees question (xgboost vs ORT vs crm.trees)",
    )
    args = p.parse_args()
    artifacts = args.artifacts.resolve()
    if args.trees_only:
        result = {"cores": len(os.sched_getaffinity(0)), "load_average_at_start": os.getloadavg()}
        result["tree_question"] = tree_question(artifacts)
        result["load_average_at_end"] = os.getloadavg()
        report_trees(result)
        return write_result(result)
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
        result["raw_onnxruntime_1_thread"] = raw_models(artifacts, args.rows, engine=False)
        result["raw_engines_1_thread"] = raw_models(artifacts, args.rows, engine=True)
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
            ray = ["--engine", "ray"]
            runs["features_ray_cold"] = [*feats, "--output", str(d / "o5.parquet"), *ray]
        for name, run_args in runs.items():
            print(f"running {name} ...", file=sys.stderr, flush=True)
            if name == "features_local":
                result[name] = _median_run([crm_batch(run_args) for _ in range(RUNS)])
            else:
                result[name] = crm_batch(run_args)
        if not args.skip_ray:
            with ray_head(result["cores"]) as head:
                joined = [*ray, "--address", head.address]
                print(f"running features_ray x{1 + RUNS} on a Ray head ...", file=sys.stderr)
                # the head's first job also starts what later jobs reuse: reported apart
                result["features_ray_first_job"] = crm_batch(
                    [*feats, "--output", str(d / "o6.parquet"), *joined], head.env()
                )
                result["features_ray"] = _median_run(
                    [
                        crm_batch([*feats, "--output", str(d / "o6.parquet"), *joined], head.env())
                        for _ in range(RUNS)
                    ]
                )
                print("running lines_ray on the Ray head ...", file=sys.stderr, flush=True)
                result["lines_ray"] = crm_batch(
                    [*lines, "--output", str(d / "o7.parquet"), *joined], head.env()
                )
        result["tree_question"] = tree_question(artifacts)
    result["load_average_at_end"] = os.getloadavg()
    report(result)
    return write_result(result)


def write_result(result: dict) -> int:
    out = REPO / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (out / f"bench_batch-{stamp}.json").write_text(json.dumps(result, indent=2, default=str))
    print(f"results: benchmarks/results/bench_batch-{stamp}.json")
    return 0


def report(r: dict) -> None:
    ort_raw = r["raw_onnxruntime_1_thread"]
    raw = r["raw_engines_1_thread"]["all_three_rows_per_s"]
    one = r["features_local_1_worker"]["rows_per_s"]
    local = r["features_local"]["rows_per_s"]
    print(f"\n== crm-batch, {r['rows']:,} customers by feature rows ({r['cores']} cores, "
          f"load {r['load_average_at_start'][0]:.1f} at start, {r['load_average_at_end'][0]:.1f} at end)")  # fmt: skip
    print(f"raw onnxruntime, 3 models, 1 thread      {ort_raw['all_three_rows_per_s']:>12,.0f} rows/s "
          f"(churn alone {ort_raw['churn_rows_per_s']:,.0f})")  # fmt: skip
    print(f"raw server engines (crm.trees), 1 thread {raw:>12,.0f} rows/s "
          f"(churn alone {r['raw_engines_1_thread']['churn_rows_per_s']:,.0f})")  # fmt: skip
    print(
        f"local, 1 worker                          {one:>12,.0f} rows/s  = "
        f"{one / ort_raw['all_three_rows_per_s']:.2f} of raw onnxruntime (goal >= 0.8), {one / raw:.2f} of raw engines"
    )
    print(f"local, {r['workers']} workers                         {local:>12,.0f} rows/s  = "
          f"{local / (raw * r['workers']):.2f} of raw engines x {r['workers']}; median of "
          f"{', '.join(f'{x:,.0f}' for x in r['features_local']['runs_rows_per_s'])}")  # fmt: skip
    if "features_ray" in r:
        ray, runs = r["features_ray"]["rows_per_s"], r["features_ray"]["runs_rows_per_s"]
        print(
            f"ray, joining a running head              {ray:>12,.0f} rows/s  = {ray / local:.2f} of local (goal >= 0.7); "
            f"median of {', '.join(f'{x:,.0f}' for x in runs)}"
        )
        first = r["features_ray_first_job"]["rows_per_s"]
        print(
            f"ray, the head's first job                {first:>12,.0f} rows/s  = {first / local:.2f} of local"
        )
        cold = r["features_ray_cold"]["rows_per_s"]
        print(
            f"ray, starting its own (cold)             {cold:>12,.0f} rows/s  = {cold / local:.2f} of local"
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
    report_trees(r)


def report_trees(r: dict) -> None:
    t = r["tree_question"]
    print(
        f"\n== churn-shaped trees ({t['trees']} trees, depth {t['depth']}, {t['features']} "
        f"features), {t['batch_rows']:,}-row batches, 1 thread, best of {ROUNDS} "
        f"(load {r['load_average_at_start'][0]:.1f} at start, {r['load_average_at_end'][0]:.1f} at end)"
    )
    rows = (
        ("xgboost inplace_predict (native)", "xgboost_inplace"),
        ("onnxruntime TreeEnsembleClassifier", "onnxruntime_classifier"),
        ("onnxruntime TreeEnsembleRegressor", "onnxruntime_regressor"),
        ("crm.trees (+ Sigmoid in onnxruntime)", "crm_trees"),
    )
    for label, key in rows:
        print(
            f"{label:<40} {t[key + '_rows_per_s']:>12,.0f} rows/s  "
            f"= {t[key + '_over_xgboost']:.2f}x xgboost"
        )
    print(
        f"crm.trees vs xgboost max |diff| {t['crm_trees_vs_xgboost_max_abs_diff']:.1e}; "
        f"bitwise equal to onnxruntime: {t['crm_trees_bitwise_equal_onnxruntime']}"
    )
    m = t["churn_model"]
    print(f"\n== trained churn model.onnx v{m['version']} (trees + calibration + BG/NBD)")
    print(f"{'onnxruntime, whole graph':<40} {m['onnxruntime_rows_per_s']:>12,.0f} rows/s")
    print(
        f"{'crm.trees + rest in onnxruntime':<40} {m['crm_trees_rows_per_s']:>12,.0f} rows/s  "
        f"= {m['crm_trees_over_onnxruntime']:.2f}x onnxruntime; bitwise equal: "
        f"{m['bitwise_equal_first_20_batches']}"
    )


if __name__ == "__main__":
    sys.exit(main())

"""One training run: data -> lineage -> clean -> features -> models -> parity -> artifacts."""

from __future__ import annotations

import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from crm.artifacts import sha256_file
from crm.columns import CATEGORY, CUSTOMER_ID, EXPORT_COLUMNS, INVOICE_DATE, PRICE
from crm.features import as_of_default, prepare_lines, timestamp_seconds, to_utc_naive
from training.cleaning import CleaningReport, clean
from training.labels import DataTooShortError, plan_cutoffs
from training.lineage_worker import LineageWorker
from training.loader import load_transactions
from training.models.base import ModelSkipped, TrainedModel
from training.observations import FeatureStore
from training.products import build_panel
from training.publish import PendingArtifact, data_artifact, model_artifact, publish
from training.report import write_report
from training.snapshots import feature_snapshot, inventory_snapshot, product_snapshot
from training.synthetic import SyntheticConfig, generate, write_csv

MODELS: tuple[str, ...] = ("segmentation", "churn", "spend", "demand", "revenue")
CUSTOMER_MODELS = frozenset({"segmentation", "churn", "spend"})
CHURN_FIT_CUTOFFS = 36
SPEND_FIT_CUTOFFS = 24
CUTOFF_STEP_DAYS = 30


@dataclass(frozen=True)
class RunConfig:
    out: Path
    data: Path | None = None
    synthetic: SyntheticConfig | None = None
    category_map: Path | None = None
    as_of: pd.Timestamp | None = None
    churn_days: int = 90
    horizon_days: int = 30
    models: tuple[str, ...] = MODELS
    currency: str = "GBP"
    threads: int = 2
    max_fit_rows: int = 150_000
    inventory_seed: int = 11
    command: str = ""


@dataclass
class RunResult:
    written: dict[str, Path]
    models: dict[str, TrainedModel]
    pending: list[PendingArtifact]
    cleaning: CleaningReport
    dataset: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    cpu_timings: dict[str, float] = field(default_factory=dict)
    lineage_max_rss_kib: int = 0
    lineage_cpu_seconds: float = 0.0
    skipped: dict[str, str] = field(default_factory=dict)
    report: Path | None = None


class Progress:
    """Stage timings, and one line per stage on the given writer."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write
        self._start = time.perf_counter()
        self._last = self._start
        self._last_cpu = time.process_time()
        self.timings: dict[str, float] = {}
        self.cpu_timings: dict[str, float] = {}

    def done(self, stage: str, message: str) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        self.timings[stage] = round(now - self._last, 3)
        self.cpu_timings[stage] = round(cpu - self._last_cpu, 3)
        self._write(f"[{now - self._start:7.1f}s] {stage:<12} {message}")
        self._last, self._last_cpu = now, cpu


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for dist in (
        "numpy",
        "pandas",
        "scikit-learn",
        "xgboost-cpu",
        "xgboost",
        "onnx",
        "onnxruntime",
        "skl2onnx",
        "onnxmltools",
    ):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _lineage_source(loaded_path: Path, file_format: str, lines: pd.DataFrame, tmp: Path) -> Path:
    """The CSV whose bytes are digested: the file itself, or a CSV export of a spreadsheet."""
    if file_format == "csv":
        return loaded_path
    export = tmp / "lineage.csv"
    out = lines[list(EXPORT_COLUMNS)].copy()
    out[INVOICE_DATE] = out[INVOICE_DATE].dt.strftime("%Y-%m-%d %H:%M:%S")
    out.to_csv(export, index=False, lineterminator="\n")
    return export


def run(config: RunConfig, write: Callable[[str], None] = print) -> RunResult:
    """Train the requested models and publish them; raises before writing on any failure.

    The dataset digest runs in a worker process while the models train.
    """
    worker = LineageWorker()
    try:
        with threadpool_limits(limits=1, user_api="blas"), tempfile.TemporaryDirectory() as tmp:
            return _run(config, Path(tmp), worker, write)
    finally:
        worker.close()


def _run(
    config: RunConfig, tmp: Path, worker: LineageWorker, write: Callable[[str], None]
) -> RunResult:
    progress = Progress(write)
    if config.synthetic is not None:
        data = generate(config.synthetic)
        path = tmp / "synthetic.csv"
        write_csv(data, str(path))
        progress.done(
            "synthetic",
            f"{len(data.lines):,} lines, {config.synthetic.customers:,} customers, "
            f"{config.synthetic.days} days, seed {config.synthetic.seed}",
        )
    elif config.data is not None:
        path = config.data
    else:
        raise ValueError("either data or synthetic must be given")

    loaded = load_transactions(path, config.category_map)
    progress.done("load", f"{len(loaded.lines):,} lines from {path.name} ({loaded.file_format})")
    lineage_path = _lineage_source(path, loaded.file_format, loaded.lines, tmp)
    worker.submit(lineage_path)
    result = _train(config, loaded.lines, progress)
    digest = worker.result()
    dataset: dict[str, Any] = {
        **digest.as_manifest(),
        "source": {
            "name": "synthetic" if config.synthetic else path.name,
            "format": loaded.file_format,
            "sha256": sha256_file(path) if loaded.file_format != "csv" else digest.sha256.hex(),
            "has_category": loaded.has_category,
        },
    }
    if config.synthetic:
        dataset["synthetic"] = {
            "customers": config.synthetic.customers,
            "days": config.synthetic.days,
            "seed": config.synthetic.seed,
            "start": config.synthetic.start.isoformat(),
        }
    progress.done("lineage", f"sha256 {digest.sha256.hex()[:16]}..., {digest.rows:,} rows")

    models, cleaning, pending, extra = result
    for item in pending:
        item.manifest["dataset"] = dataset
    written = publish(config.out, pending)
    version = next(iter(written.values())).name if written else "-"
    progress.done("publish", f"version {version}: {', '.join(sorted(written))} -> {config.out}")
    skipped = extra["skipped"]
    report = write_report(
        config.out,
        version,
        models=models,
        skipped=skipped,
        profile={"command": config.command, **extra["profile"]},
        cleaning=cleaning.as_manifest(),
        table=summary_table(models, skipped),
        snapshot=extra["snapshot"],
    )
    progress.done("report", str(report))
    return RunResult(
        written,
        models,
        pending,
        cleaning,
        dataset,
        progress.timings,
        progress.cpu_timings,
        worker.max_rss_kib,
        worker.cpu_seconds,
        skipped,
        report,
    )


def _train(
    config: RunConfig, lines: pd.DataFrame, progress: Progress
) -> tuple[dict[str, TrainedModel], CleaningReport, list[PendingArtifact], dict[str, Any]]:
    from training.models.churn import ChurnParams, train_churn
    from training.models.demand import DemandParams, train_demand
    from training.models.revenue import RevenueParams, train_revenue
    from training.models.segmentation import SegmentationParams, train_segmentation
    from training.models.spend import SpendParams, train_spend

    progress.done("imports", "scikit-learn, xgboost, onnx converters")
    cleaned, report = clean(lines)
    dropped = ", ".join(f"{k} {v:,}" for k, v in report.dropped.items())
    progress.done("clean", f"kept {report.rows_out:,} of {report.rows_in:,} (dropped: {dropped})")

    prepared = prepare_lines(cleaned)
    as_of = (
        to_utc_naive(config.as_of)
        if config.as_of is not None
        else pd.Timestamp(as_of_default(prepared))
    )
    prepared = prepared.loc[prepared["_t"].to_numpy() < timestamp_seconds(as_of)].reset_index(
        drop=True
    )
    if prepared.empty:
        raise ValueError(f"no transaction lines before the as-of time {as_of.isoformat()}")
    start = pd.Timestamp(int(prepared["_t"].min()), unit="s")
    categories = sorted(str(c) for c in prepared[CATEGORY].unique())
    store = FeatureStore(prepared, categories)
    progress.done(
        "prepare",
        f"{prepared[CUSTOMER_ID].nunique():,} customers, {len(categories)} categories, "
        f"{start.date()} .. {as_of.isoformat()}",
    )

    common: dict[str, Any] = {
        "libraries": library_versions(),
        "run": {"as_of": as_of.isoformat(), "command": config.command},
        "training": {
            "window": {"start": start.isoformat(), "end": as_of.isoformat()},
            "as_of": as_of.isoformat(),
            "cleaning": report.as_manifest(),
        },
        "serving": {
            "currency": config.currency,
            "categories": categories,
            "churn_days": config.churn_days,
            "horizon_days": config.horizon_days,
        },
    }
    threads, rows = config.threads, config.max_fit_rows
    churn_plan = {"step_days": CUTOFF_STEP_DAYS, "n_fit": CHURN_FIT_CUTOFFS}
    spend_plan = {"step_days": CUTOFF_STEP_DAYS, "n_fit": SPEND_FIT_CUTOFFS}
    trained: dict[str, TrainedModel] = {}
    skipped: dict[str, str] = {}
    panel = build_panel(prepared, as_of) if "demand" in config.models else None
    for name in config.models:
        if name not in MODELS:
            raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
        try:
            if name == "segmentation":
                trained[name] = train_segmentation(
                    store,
                    plan_cutoffs(start, as_of, config.churn_days, **churn_plan),
                    SegmentationParams(
                        config.churn_days, min(rows, SegmentationParams.max_fit_rows)
                    ),
                )
            elif name == "churn":
                trained[name] = train_churn(
                    store,
                    plan_cutoffs(start, as_of, config.churn_days, **churn_plan),
                    ChurnParams(config.churn_days, rows, threads),
                )
            elif name == "spend":
                trained[name] = train_spend(
                    store,
                    plan_cutoffs(start, as_of, config.horizon_days, **spend_plan),
                    SpendParams(config.horizon_days, rows, threads),
                )
            elif name == "demand" and panel is not None:
                trained[name] = train_demand(
                    panel, categories, DemandParams(max_fit_rows=rows, threads=threads)
                )
            elif name == "revenue":
                trained[name] = train_revenue(
                    prepared, categories, as_of, RevenueParams(max_fit_rows=rows, threads=threads)
                )
        except (ModelSkipped, DataTooShortError) as err:
            skipped[name] = str(err)
            progress.done(name, f"skipped: {err}")
            continue
        except ValueError as err:  # a shape the estimators refuse (e.g. fewer rows than clusters)
            skipped[name] = f"{name}: the data cannot support it ({' '.join(str(err).split())})"
            progress.done(name, f"skipped: {skipped[name]}")
            continue
        progress.done(name, _headline(trained[name]))
    if not trained:
        raise DataTooShortError(
            "no model could be trained: " + "; ".join(f"{k}: {v}" for k, v in skipped.items())
        )

    pending = [model_artifact(m, common) for m in trained.values()]
    gate = ", ".join(
        f"{p.name} {p.parity.max_abs_diff:.1e}{'' if p.parity.passed else ' FAILED'}"
        for p in pending
        if p.parity is not None
    )
    progress.done("parity", f"max |onnx - native|: {gate}")

    if CUSTOMER_MODELS & set(config.models):
        files, manifest = feature_snapshot(store, as_of)
        pending.append(data_artifact("features", files, manifest, common))
    if panel is not None:
        files, manifest = product_snapshot(panel, categories)
        pending.append(data_artifact("products", files, manifest, common))
        files, manifest = inventory_snapshot(panel, config.inventory_seed)
        pending.append(data_artifact("inventory", files, manifest, common))
    progress.done("snapshots", ", ".join(p.name for p in pending if p.parity is None) or "none")
    extra = {
        "skipped": skipped,
        "profile": _profile(
            lines, report, prepared=prepared, start=start, as_of=as_of, categories=categories
        ),
        "snapshot": store.at(as_of)[1] if "segmentation" in trained else None,
    }
    return trained, report, pending, extra


def _profile(
    lines: pd.DataFrame,
    report: CleaningReport,
    *,
    prepared: pd.DataFrame,
    start: pd.Timestamp,
    as_of: pd.Timestamp,
    categories: list[str],
) -> dict[str, Any]:
    """What the data looked like: sizes, span and the shapes that make training hard."""
    codes = prepared["_c"].to_numpy()
    value = np.bincount(codes, weights=np.abs(prepared["_amount"].to_numpy()))
    sales = ~prepared["_ret"].to_numpy()
    return {
        "lines loaded": len(lines),
        "lines kept": report.rows_out,
        "lines before as-of": len(prepared),
        "customers": int(prepared["_c"].nunique()),
        "customers with only $0 lines": int((value[np.unique(codes)] == 0).sum()),
        "span (days)": int((as_of - start).days),
        "first line": start.isoformat(),
        "as-of (exclusive end)": as_of.isoformat(),
        "categories": len(categories),
        "stock codes": int(prepared["_p"].nunique()),
        "sale invoices": int(prepared.loc[sales, "_i"].nunique()),
        "return lines": int((~sales).sum()),
        "$0 lines": int((prepared[PRICE].to_numpy() == 0).sum()),
    }


def _headline(model: TrainedModel) -> str:
    parts = []
    for row in model.summary[:2]:
        base = f" vs {row.baseline:.4g}" if row.baseline is not None else ""
        parts.append(f"{row.metric} {row.model:.4g}{base}")
    return "; ".join(parts) + " (model vs baseline)"


def summary_table(models: dict[str, TrainedModel], skipped: dict[str, str] | None = None) -> str:
    """Every summary metric of every model next to its naive and BG/NBD baselines; `better`
    says "model" when it beats every baseline shown, else which baseline(s) did as well."""
    header = f"{'model':<13}{'metric':<22}{'model':>12}{'naive':>12}{'BG/NBD':>12}  better"
    lines = [header, "-" * len(header)]

    def cell(value: float | None) -> str:
        return f"{value:12.4f}" if value is not None else f"{'-':>12}"

    for name, model in models.items():
        for row in model.summary:
            losses = [
                label
                for label, other in (("naive", row.baseline), ("BG/NBD", row.bgnbd))
                if other is not None and row.loses_to(other)
            ]
            has_baseline = row.baseline is not None or row.bgnbd is not None
            wins = [
                other
                for other in (row.baseline, row.bgnbd)
                if other is not None
                and row.loses_to(other) is False
                and row._better(row.model, other)
            ]
            if losses:
                verdict = ", ".join(losses)
            elif not has_baseline:
                verdict = "-"
            else:
                verdict = "model" if wins else "tie"
            lines.append(
                f"{name:<13}{row.metric:<22}{row.model:12.4f}{cell(row.baseline)}"
                f"{cell(row.bgnbd)}  {verdict}"
            )
    for name, why in (skipped or {}).items():
        lines.append(f"{name:<13}skipped: {why}")
    return "\n".join(lines)

"""The human-readable report of one run: Markdown next to the artifacts, with PNG plots.

`<out>/report-v<version>.md` plus `<out>/report-v<version>-<plot>.png` (files at the artifact
root, which the server's registry ignores: it only reads model directories). Contents: the
data profile and cleaning counts, every model's metrics next to its naive and BG/NBD
baselines, what was skipped and why, churn reliability (table and plot), spend predicted vs
actual totals by decile (plot), and the segment sizes of the customers in the snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.models.base import TrainedModel

PLOTS = ("churn-calibration", "spend-deciles", "segments")


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    def text(value: object) -> str:
        if isinstance(value, float):
            return "-" if not np.isfinite(value) else f"{value:,.4f}"
        return "-" if value is None else str(value)

    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(text(v) for v in row) + " |" for row in rows]
    return out


def segment_sizes(model: TrainedModel, values: np.ndarray) -> dict[str, int]:
    """Customers per named segment: the exported segmentation graph on the snapshot."""
    import onnxruntime as ort

    if not len(values):
        return {}
    session = ort.InferenceSession(model.onnx_model, providers=["CPUExecutionProvider"])
    clusters = session.run(None, {session.get_inputs()[0].name: values.astype(np.float32)})[0]
    names = {int(k): v["segment"] for k, v in model.serving["segments"].items()}
    sizes: dict[str, int] = {}
    for cluster, count in zip(*np.unique(clusters, return_counts=True), strict=True):
        name = names.get(int(cluster), str(cluster))
        sizes[name] = sizes.get(name, 0) + int(count)
    return dict(sorted(sizes.items(), key=lambda kv: -kv[1]))


def _plots(
    out: Path, stem: str, models: dict[str, TrainedModel], segments: dict[str, int]
) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: dict[str, str] = {}
    churn = models.get("churn")
    if churn is not None:
        fig, ax = plt.subplots(figsize=(5.5, 5))
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
        for key, label in (("validation", "model"), ("bgnbd", "BG/NBD"), ("baseline", "naive")):
            table = churn.metrics[key].get("reliability", [])
            if table:
                ax.plot(
                    [r["mean_predicted"] for r in table],
                    [r["observed_rate"] for r in table],
                    marker="o",
                    label=f"{label} (Brier {churn.metrics[key]['brier']:.4f})",
                )
        ax.set_xlabel("predicted P(churn)")
        ax.set_ylabel("observed churn rate")
        ax.set_title("Churn calibration on the validation window")
        ax.legend()
        written["churn-calibration"] = _save(fig, out, stem, "churn-calibration")
    spend = models.get("spend")
    if spend is not None:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        actual = [d["actual_total"] for d in spend.metrics["validation"]["deciles"]]
        width = 0.2
        x = np.arange(1, len(actual) + 1)
        ax.bar(x - 1.5 * width, actual, width, label="actual (model's deciles)")
        for k, (key, label) in enumerate(
            (("validation", "model"), ("bgnbd", "BG/NBD x GG"), ("baseline", "naive"))
        ):
            predicted = [d["predicted_total"] for d in spend.metrics[key]["deciles"]]
            ax.bar(x + (k - 0.5) * width, predicted, width, label=f"{label} predicted")
        ax.set_xlabel("decile of predicted spend (1 = highest)")
        ax.set_ylabel("total spend in the window")
        ax.set_title("Spend: predicted vs actual totals by decile (validation)")
        ax.set_xticks(x)
        ax.legend(fontsize=8)
        written["spend-deciles"] = _save(fig, out, stem, "spend-deciles")
    if segments:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.barh(list(segments)[::-1], list(segments.values())[::-1])
        ax.set_xlabel("customers")
        ax.set_title("Segment sizes (feature snapshot)")
        written["segments"] = _save(fig, out, stem, "segments")
    plt.close("all")
    return written


def _save(fig: Any, out: Path, stem: str, plot: str) -> str:
    name = f"{stem}-{plot}.png"
    fig.tight_layout()
    fig.savefig(out / name, dpi=90)
    return name


def write_report(
    out: Path,
    version: str,
    *,
    models: dict[str, TrainedModel],
    skipped: dict[str, str],
    profile: dict[str, Any],
    cleaning: dict[str, Any],
    table: str,
    snapshot: np.ndarray | None,
) -> Path:
    """Write the Markdown report and its plots into `out`; returns the report's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"report-v{version}"
    segments = (
        segment_sizes(models["segmentation"], snapshot)
        if "segmentation" in models and snapshot is not None
        else {}
    )
    plots = _plots(out, stem, models, segments)
    lines = [f"# Training run, version {version}", ""]
    lines += [f"`{profile.get('command') or 'python -m training'}`", "", "## Data", ""]
    lines += _table(["what", "value"], [(k, v) for k, v in profile.items() if k != "command"])
    lines += ["", "Cleaning (rows dropped per rule, in order; flagged rows are kept):", ""]
    lines += _table(
        ["rule", "rows"],
        [
            *cleaning["dropped"].items(),
            *((f"kept: {k}", v) for k, v in cleaning["flagged"].items()),
        ],
    )
    lines += ["", "## Models against their baselines (validation window)", ""]
    lines += ["```", table, "```", ""]
    if skipped:
        lines += ["Skipped:", ""] + [f"- **{k}**: {v}" for k, v in skipped.items()] + [""]
    churn = models.get("churn")
    if churn is not None:
        lines += ["## Churn calibration", ""]
        if "churn-calibration" in plots:
            lines += [f"![churn calibration]({plots['churn-calibration']})", ""]
        lines += _table(
            ["predicted", "rows", "mean predicted", "observed"],
            [
                (r["bin"], r["rows"], r["mean_predicted"], r["observed_rate"])
                for r in churn.metrics["validation"]["reliability"]
            ],
        )
        lines.append("")
    spend = models.get("spend")
    if spend is not None:
        v = spend.metrics
        lines += ["## Spend totals", ""]
        lines += _table(
            ["", "predicted total", "actual total", "ratio"],
            [
                (label, v[k]["total_predicted"], v[k]["total_actual"], v[k]["total_ratio"])
                for k, label in (
                    ("validation", "model"),
                    ("bgnbd", "BG/NBD x GG"),
                    ("baseline", "naive"),
                )
            ],
        )
        lines.append("")
        if "spend-deciles" in plots:
            lines += [f"![spend deciles]({plots['spend-deciles']})", ""]
        lines += _table(
            ["decile", "rows", "predicted total", "actual total"],
            [
                (d["decile"], d["rows"], d["predicted_total"], d["actual_total"])
                for d in v["validation"]["deciles"]
            ],
        )
        lines.append("")
    if segments:
        lines += ["## Segments", ""]
        if "segments" in plots:
            lines += [f"![segments]({plots['segments']})", ""]
        lines += _table(["segment", "customers"], list(segments.items()))
        lines.append("")
    path = out / f"{stem}.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path

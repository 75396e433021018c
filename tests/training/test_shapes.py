"""Real-export shapes: every model trains or is skipped with one line, and the rest is served.

Each shape comes from the synthetic generator's options (small runs), plus the real apparel
export in training/data (one cohort, one product, no returns, $0 lines, heavy-tailed spend).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from clients.client import CrmClient
from crm.artifacts import list_names, read_manifest
from training.labels import min_span_days
from training.pipeline import MODELS, RunConfig, RunResult, run
from training.synthetic import SyntheticConfig

APPAREL = Path(__file__).resolve().parents[2] / "training" / "data" / "apparel_online_retail.csv"
SMALL = SyntheticConfig(customers=300, days=400, seed=5)
# shapes that do not interfere share a run (each run costs a few seconds of CI)
SHAPES: dict[str, SyntheticConfig] = {
    "one_product_no_returns": replace(SMALL, single_product=True, returns=False),
    "one_cohort_heavy_tail": replace(SMALL, single_cohort=True, heavy_tail=True),
    "duplicates_zero_only_customers": replace(SMALL, duplicate_share=0.3, zero_only_customers=25),
    "barely_long_enough": replace(SMALL, days=min_span_days(90) + 2),
}


def _train(out: Path, **kwargs: object) -> tuple[RunResult, list[str]]:
    log: list[str] = []
    result = run(RunConfig(out=out, **kwargs), log.append)  # type: ignore[arg-type]
    return result, log


def _check_written_or_skipped(result: RunResult, log: list[str], out: Path) -> None:
    assert set(result.written) | set(result.skipped) >= set(MODELS)
    for name, why in result.skipped.items():
        (line,) = [entry for entry in log if f"] {name}" in entry]
        assert "skipped: " in line and why in line and "\n" not in why
    for name in result.written:
        assert read_manifest(out / name / "1")["run"]["version"] == 1
    assert result.report is not None and result.report.is_file()
    text = result.report.read_text()
    assert "| customers |" in text and "BG/NBD" in text


@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_shape_trains_every_model(shape: str, tmp_path: Path) -> None:
    result, log = _train(tmp_path, synthetic=SHAPES[shape])
    _check_written_or_skipped(result, log, tmp_path)
    lines = result.dataset["rows"]
    if shape == "one_product_no_returns":
        assert "| stock codes | 1 |" in result.report.read_text()
        assert result.cleaning.flagged["cancellation_lines"] == 0 < lines
    assert set(result.written) >= set(MODELS), result.skipped  # all five on each shape
    if shape == "duplicates_zero_only_customers":
        # customers whose only lines are $0 are customers: in the snapshot, like any other
        with np.load(tmp_path / "features" / "1" / "snapshot.npz") as snapshot:
            ids = set(snapshot["customer_ids"].tolist())
        assert {str(990_000 + i) for i in range(25)} <= ids
        assert result.cleaning.dropped["duplicate_line"] >= 0.2 * result.cleaning.rows_in


def test_too_short_for_the_churn_horizon_skips_with_the_minimum_and_serves_the_rest(
    tmp_path: Path, start_server
) -> None:
    days = min_span_days(90) - 40  # long enough for a 30-day spend horizon, not for 90 days
    result, log = _train(tmp_path, synthetic=replace(SMALL, days=days))
    _check_written_or_skipped(result, log, tmp_path)
    assert {"churn", "segmentation"} <= set(result.skipped)
    assert "need at least 240" in result.skipped["churn"]
    assert "spend" in result.written and "features" in list_names(tmp_path)
    server = start_server(tmp_path)
    with CrmClient(server.target) as client:
        assert "spend" in {m.name for m in client.list_models()}
        customer = str(np.load(tmp_path / "features" / "1" / "snapshot.npz")["customer_ids"][0])
        (row,) = client.predict_spend([customer]).results
        assert row.error is None and row.total is not None and row.total >= 0


def test_the_apparel_export_trains_all_five_models(tmp_path: Path) -> None:
    result, log = _train(tmp_path, data=APPAREL, churn_days=92, horizon_days=30)
    _check_written_or_skipped(result, log, tmp_path)
    assert set(result.written) >= set(MODELS)
    churn = read_manifest(tmp_path / "churn" / "1")
    assert churn["training"]["cutoffs"]["refit"][-1] == churn["training"]["cutoffs"]["validation"]
    for key in ("validation", "baseline", "bgnbd"):
        assert {"roc_auc", "pr_auc", "brier", "reliability"} <= set(churn["metrics"][key])
    spend = read_manifest(tmp_path / "spend" / "1")
    for key in ("validation", "baseline", "bgnbd"):
        assert {"spearman", "rmse", "mae", "total_ratio"} <= set(spend["metrics"][key])
    assert (tmp_path / "report-v1-churn-calibration.png").is_file()
    assert (tmp_path / "report-v1-spend-deciles.png").is_file()

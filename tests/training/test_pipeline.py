"""The whole run on the default synthetic data: artifacts, manifests, outputs, honest metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest

from crm.artifacts import KIND_ONNX, list_names, list_versions, read_manifest, verify_files
from crm.demand import demand_feature_names, demand_rows
from crm.feature_docs import TABLES
from crm.features import customer_feature_matrix, feature_names
from crm.line_features import line_feature_matrix, line_feature_names
from crm.lineage import digest_file
from tests.training.conftest import SYNTHETIC, TrainedRun
from training.cleaning import clean
from training.cli import main
from training.loader import load_transactions
from training.publish import publish
from training.synthetic import generate, write_csv

MODELS = ("segmentation", "churn", "spend", "demand", "revenue")
SEGMENTS = {"VIP", "Loyal", "Regular", "New", "At-Risk", "Lost"}


def _latest(root: Path, name: str) -> tuple[Path, dict]:
    version_dir = root / name / str(list_versions(root, name)[-1])
    return version_dir, read_manifest(version_dir)


def _session(version_dir: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(version_dir / "model.onnx"), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def source_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("source") / "synthetic.csv"
    write_csv(generate(SYNTHETIC), str(path))
    return path


@pytest.fixture(scope="module")
def snapshot(trained: TrainedRun) -> tuple[np.ndarray, np.ndarray, list[str], dict]:
    version_dir, manifest = _latest(trained.out, "features")
    with np.load(version_dir / "snapshot.npz", allow_pickle=False) as data:
        return (
            data["customer_ids"],
            data["values"],
            [str(n) for n in data["feature_names"]],
            manifest,
        )


def test_one_version_of_every_artifact_verified(trained: TrainedRun) -> None:
    names = {*MODELS, "features", "products", "inventory"}
    assert set(list_names(trained.out)) == names
    for name in names:
        assert list_versions(trained.out, name) == [1]
        version_dir, manifest = _latest(trained.out, name)
        verify_files(version_dir, manifest)
        assert manifest["run"]["version"] == 1


def test_model_manifests_carry_the_contract(trained: TrainedRun, source_csv: Path) -> None:
    lineage = digest_file(source_csv).as_manifest()
    categories = ["electronics", "fashion", "grocery", "home", "sports"]
    for name in MODELS:
        _, m = _latest(trained.out, name)
        assert m["kind"] == KIND_ONNX
        assert m["inputs"] == [
            {
                "name": "features",
                "dtype": "float32",
                "shape": [None, len(m["features"])],
                "meaning": m["inputs"][0]["meaning"],
            }
        ]
        assert {k: m["dataset"][k] for k in lineage} == lineage
        assert m["parity"]["passed"] is True
        assert set(m["metrics"]) >= {"validation", "baseline"}
        assert m["training"]["as_of"] == "2025-01-01T00:00:00"
        assert m["training"]["cleaning"]["rows_in"] == lineage["rows"]
        assert {"numpy", "pandas", "scikit-learn", "onnx", "onnxruntime"} <= set(m["libraries"])
        serving = m["serving"]
        assert serving["currency"] == "GBP" and serving["categories"] == categories
        assert serving["horizon_days"] == (7 if name == "demand" else 30)
        assert serving["churn_days"] == 90
    for name in ("segmentation", "churn", "spend"):
        assert _latest(trained.out, name)[1]["features"] == feature_names(categories)
    assert _latest(trained.out, "demand")[1]["features"] == demand_feature_names(categories)
    assert _latest(trained.out, "revenue")[1]["features"] == line_feature_names(categories)

    churn = _latest(trained.out, "churn")[1]["serving"]
    assert churn["risk_thresholds"] == [0.3, 0.6, 0.8]
    assert (
        set(churn["feature_means"]) == set(churn["importances"]) == set(feature_names(categories))
    )
    seg = _latest(trained.out, "segmentation")[1]["serving"]
    assert sorted(seg["segments"]) == [str(i) for i in range(6)]
    assert {s["segment"] for s in seg["segments"].values()} == SEGMENTS
    assert all(s["action"] for s in seg["segments"].values())
    assert set(seg["rfm_edges"]) == {"recency_days", "frequency", "monetary"}


def test_model_manifests_carry_every_feature_meaning_and_unit(trained: TrainedRun) -> None:
    """`feature_docs` lists every input in `features` order, each with a meaning and a unit,
    as the feature module's table gives them (so the manifest explains itself)."""
    categories = ["electronics", "fashion", "grocery", "home", "sports"]
    for name in MODELS:
        _, m = _latest(trained.out, name)
        docs = m["feature_docs"]
        assert [d["name"] for d in docs] == m["features"], name
        assert all(d["meaning"] and d["unit"] for d in docs), name
        assert docs == [
            {"name": s.name, "meaning": s.meaning, "unit": s.unit}
            for s in TABLES[name].specs(categories)
        ], name
    churn = {d["name"]: d for d in _latest(trained.out, "churn")[1]["feature_docs"]}
    assert churn["recency_days"]["unit"] == "days"
    assert churn["cat_share__home"]["unit"] == "fraction 0..1"
    assert "'home'" in churn["cat_share__home"]["meaning"]
    for data in ("features", "products", "inventory"):
        assert "feature_docs" not in _latest(trained.out, data)[1], data


def test_customer_models_score_the_snapshot(trained: TrainedRun, snapshot: tuple) -> None:
    ids, values, names, manifest = snapshot
    assert manifest["as_of"] == "2025-01-01T00:00:00" and manifest["features"] == names
    assert values.dtype == np.float32 and values.shape == (len(ids), len(names))
    assert len(set(ids.tolist())) == len(ids) == 3000

    churn = _session(_latest(trained.out, "churn")[0]).run(["probability"], {"features": values})[0]
    assert churn.shape == (len(ids),) and churn.dtype == np.float32
    assert ((churn >= 0) & (churn <= 1)).all() and churn.std() > 0.1

    spend = _session(_latest(trained.out, "spend")[0]).run(["spend"], {"features": values})[0]
    assert spend.shape == (len(ids), 6) and (spend >= 0).all()
    np.testing.assert_allclose(spend[:, 1:].sum(axis=1), spend[:, 0], rtol=1e-4, atol=1e-3)

    version_dir, seg_manifest = _latest(trained.out, "segmentation")
    cluster = _session(version_dir).run(["cluster"], {"features": values})[0]
    assert cluster.dtype == np.int64 and cluster.shape == (len(ids),)
    assert set(map(str, cluster.tolist())) == set(seg_manifest["serving"]["segments"])


def test_serving_features_from_raw_lines_equal_the_snapshot(
    snapshot: tuple, source_csv: Path
) -> None:
    ids, values, names, manifest = snapshot
    lines, _ = clean(load_transactions(source_csv).lines)
    chosen = [str(c) for c in ids[:: len(ids) // 7][:7]]
    subset = lines.loc[lines["Customer ID"].isin(chosen)].sample(frac=1.0, random_state=0)
    got_ids, got = customer_feature_matrix(subset, pd.Timestamp(manifest["as_of"]), names)
    row = {str(c): i for i, c in enumerate(ids)}
    expected = values[[row[c] for c in got_ids]]
    assert sorted(got_ids) == sorted(chosen)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-5)


def test_demand_forecasts_from_the_product_snapshot(trained: TrainedRun) -> None:
    version_dir, manifest = _latest(trained.out, "products")
    with np.load(version_dir / "products.npz", allow_pickle=False) as data:
        units = data["daily_units"]
        rows = demand_rows(
            units,
            np.datetime64(manifest["origin"]),
            data["unit_price"],
            [str(c) for c in data["category"]],
            manifest["categories"],
        )
    assert manifest["origin"] == "2025-01-01" and units.shape[1] == manifest["history_days"]
    forecast = _session(_latest(trained.out, "demand")[0]).run(["units"], {"features": rows})[0]
    assert forecast.shape == (len(units) * 7,) and (forecast >= 0).all()
    per_product = forecast.reshape(len(units), 7).sum(axis=1)
    recent = units[:, -28:].sum(axis=1) / 4
    assert np.corrcoef(per_product, recent)[0, 1] > 0.8


def test_revenue_is_gross_less_expected_returns(trained: TrainedRun, source_csv: Path) -> None:
    lines, _ = clean(load_transactions(source_csv).lines)
    sales = lines.loc[lines["Quantity"] > 0].head(500)
    categories = _latest(trained.out, "revenue")[1]["serving"]["categories"]
    x = line_feature_matrix(sales, categories)
    revenue = _session(_latest(trained.out, "revenue")[0]).run(["revenue"], {"features": x})[0]
    gross = (sales["Quantity"] * sales["Price"]).to_numpy()
    assert revenue.shape == (500,)
    assert (revenue <= gross + 1e-3).all() and (revenue >= 0.5 * gross).all()
    assert (revenue < gross - 1e-6).mean() > 0.9  # returns expected on almost every line


def test_inventory_snapshot(trained: TrainedRun) -> None:
    version_dir, manifest = _latest(trained.out, "inventory")
    inventory = pd.read_csv(version_dir / "inventory.csv")
    assert list(inventory.columns) == [
        "product_id",
        "stock_on_hand",
        "unit_cost",
        "unit_price",
        "units_on_order",
        "lead_time_days",
        "category",
    ]
    assert set(manifest["generated_mix"]) == {"dead_stock", "healthy", "overstock", "stockout_risk"}
    products = pd.read_csv(_latest(trained.out, "products")[0] / "products.csv", dtype=str)
    assert set(inventory["product_id"].astype(str)) == set(products["product_id"])


# The metric each model is chosen for, and that it must beat its naive baseline on.
PRIMARY = {
    "segmentation": [("rfm_r2", True), ("future_purchase_r2", True)],
    "churn": [("pr_auc", True), ("brier", False)],
    "spend": [("rmse", False), ("mae", False)],
    "demand": [("wape", False)],
    "revenue": [("returned_value_rmse", False), ("return_auc", True)],
}


@pytest.mark.parametrize("name", sorted(PRIMARY))
def test_each_model_beats_its_naive_baseline(trained: TrainedRun, name: str) -> None:
    metrics = _latest(trained.out, name)[1]["metrics"]
    for metric, higher in PRIMARY[name]:
        model, base = metrics["validation"][metric], metrics["baseline"][metric]
        assert (model > base) if higher else (model < base), (metric, model, base)


def test_publishing_again_makes_the_next_version(trained: TrainedRun, tmp_path: Path) -> None:
    publish(tmp_path, trained.result.pending)
    written = publish(tmp_path, trained.result.pending)
    assert {p.name for p in written.values()} == {"2"}
    for name in written:
        assert list_versions(tmp_path, name) == [1, 2]
        assert read_manifest(tmp_path / name / "2")["run"]["version"] == 2


def test_progress_and_summary(trained: TrainedRun) -> None:
    stages = [line.split("]", 1)[1].split()[0] for line in trained.log]
    assert stages[:5] == ["synthetic", "load", "imports", "clean", "prepare"]
    assert {*MODELS, "parity", "snapshots", "lineage", "publish"} <= set(stages)


def test_cli_bad_input_exits_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("Invoice,StockCode\n1,A\n")
    out = tmp_path / "out"
    assert main(["--data", str(bad), "--out", str(out)]) == 2
    assert "missing column 'Description'" in capsys.readouterr().err
    assert list_names(out) == []


def test_cli_help_lists_the_options(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in (
        "--data",
        "--synthetic",
        "--customers",
        "--days",
        "--seed",
        "--out",
        "--as-of",
        "--churn-days",
        "--horizon-days",
        "--models",
    ):
        assert option in text


def test_manifest_is_plain_json(trained: TrainedRun) -> None:
    for name in list_names(trained.out):
        text = (_latest(trained.out, name)[0] / "manifest.json").read_text()
        assert "NaN" not in text and "Infinity" not in text
        json.loads(text)

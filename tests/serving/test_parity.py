"""A served prediction equals the training pipeline's offline prediction (to 1e-6).

Offline: the same synthetic data regenerated from its seed, loaded, cleaned and featurised by
training's own functions, scored by the exported model in-process. Served: by customer id
(feature snapshot) and by the customer's raw transaction lines plus the as-of time.
"""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest

from clients import CrmClient
from clients.scoring import History, Line
from crm.features import compute_customer_features, prepare_lines
from tests.conftest import SYNTHETIC

N_CHECKED = 40


def _manifest(artifacts: Path, name: str) -> tuple[Path, dict]:
    version_dir = max((artifacts / name).iterdir(), key=lambda p: int(p.name))
    return version_dir, json.loads((version_dir / "manifest.json").read_text())


@pytest.fixture(scope="module")
def offline(trained_artifacts: Path, tmp_path_factory: pytest.TempPathFactory):
    from training.cleaning import clean
    from training.loader import load_transactions
    from training.synthetic import SyntheticConfig, generate, write_csv

    args = dict(zip(SYNTHETIC[1::2], SYNTHETIC[2::2], strict=True))
    config = SyntheticConfig(
        customers=int(args["--customers"]), days=int(args["--days"]), seed=int(args["--seed"])
    )
    path = tmp_path_factory.mktemp("offline") / "synthetic.csv"
    write_csv(generate(config), str(path))
    cleaned, _ = clean(load_transactions(path).lines)
    _, snapshot = _manifest(trained_artifacts, "features")
    as_of = pd.Timestamp(snapshot["as_of"])
    ids, values = compute_customer_features(prepare_lines(cleaned), as_of, snapshot["categories"])
    return cleaned, as_of, [str(i) for i in ids], values, snapshot["features"]


def _onnx(artifacts: Path, name: str, rows: np.ndarray, output: str) -> np.ndarray:
    version_dir, _ = _manifest(artifacts, name)
    session = ort.InferenceSession(
        str(version_dir / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    (out,) = session.run([output], {"features": rows.astype(np.float32)})
    return np.asarray(out, dtype=np.float64)


def _columns(names: list[str], wanted: list[str]) -> list[int]:
    return [names.index(n) for n in wanted]


def test_served_churn_equals_offline_by_id_and_by_lines(served, trained_artifacts, offline) -> None:
    cleaned, as_of, ids, values, names = offline
    _, churn = _manifest(trained_artifacts, "churn")
    picks = np.linspace(0, len(ids) - 1, N_CHECKED).astype(int)
    expected = _onnx(
        trained_artifacts,
        "churn",
        values[picks][:, _columns(names, churn["features"])],
        "probability",
    ).reshape(-1)
    chosen = [ids[i] for i in picks]
    with CrmClient(served.target) as client:
        by_id = client.predict_churn(chosen).results
        np.testing.assert_allclose([r.probability for r in by_id], expected, atol=1e-6, rtol=0)
        histories = []
        for cid in chosen[:10]:
            mine = cleaned[cleaned["Customer ID"].astype(str) == cid]
            lines = [
                Line(
                    str(r.Invoice), str(r.StockCode), float(r.Quantity), float(r.Price),
                    pd.Timestamp(r.InvoiceDate).to_pydatetime().replace(tzinfo=UTC),
                    customer_id=cid, category=str(r.Category),
                )
                for r in mine.itertuples()
            ]  # fmt: skip
            histories.append(History(lines, as_of.to_pydatetime().replace(tzinfo=UTC)))
        by_lines = client.predict_churn(histories).results
    np.testing.assert_allclose([r.probability for r in by_lines], expected[:10], atol=1e-6, rtol=0)


def test_served_spend_and_segments_equal_offline(served, trained_artifacts, offline) -> None:
    _, _, ids, values, names = offline
    picks = np.linspace(0, len(ids) - 1, N_CHECKED).astype(int)
    chosen = [ids[i] for i in picks]
    _, spend = _manifest(trained_artifacts, "spend")
    expected_spend = _onnx(
        trained_artifacts, "spend", values[picks][:, _columns(names, spend["features"])], "spend"
    )
    _, seg = _manifest(trained_artifacts, "segmentation")
    expected_cluster = _onnx(
        trained_artifacts,
        "segmentation",
        values[picks][:, _columns(names, seg["features"])],
        "cluster",
    ).reshape(-1)
    with CrmClient(served.target) as client:
        got = client.predict_spend(chosen).results
        segments = client.assign_segments(chosen).results
    np.testing.assert_allclose([r.total for r in got], expected_spend[:, 0], atol=1e-6, rtol=1e-6)
    for r, row in zip(got, expected_spend, strict=True):
        np.testing.assert_allclose(list(r.categories.values()), row[1:], atol=1e-6, rtol=1e-6)
    assert [s.cluster_id for s in segments] == expected_cluster.astype(int).tolist()

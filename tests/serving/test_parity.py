"""A served prediction equals the training pipeline's offline prediction (to 1e-6).

Offline: the same synthetic data regenerated from its seed, loaded, cleaned and featurised by
training's own functions, scored by the exported model in-process. Served: by customer id
(feature snapshot) and by the customer's raw transaction lines plus the as-of time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest

from clients import CrmClient
from clients.scoring import History
from crm.features import compute_customer_features, prepare_lines
from tests.serving.helpers import customer_lines, latest, snapshot_as_of

N_CHECKED = 40


@pytest.fixture(scope="module")
def offline(trained_artifacts: Path, trained_lines: pd.DataFrame):
    _, snapshot = latest(trained_artifacts, "features")
    as_of = pd.Timestamp(snapshot["as_of"])
    ids, values = compute_customer_features(
        prepare_lines(trained_lines), as_of, snapshot["categories"]
    )
    return trained_lines, snapshot, [str(i) for i in ids], values, snapshot["features"]


def _onnx(artifacts: Path, name: str, rows: np.ndarray, output: str) -> np.ndarray:
    version_dir, _ = latest(artifacts, name)
    session = ort.InferenceSession(
        str(version_dir / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    (out,) = session.run([output], {"features": rows.astype(np.float32)})
    return np.asarray(out, dtype=np.float64)


def _columns(names: list[str], wanted: list[str]) -> list[int]:
    return [names.index(n) for n in wanted]


def test_served_churn_equals_offline_by_id_and_by_lines(served, trained_artifacts, offline) -> None:
    cleaned, snapshot, ids, values, names = offline
    _, churn = latest(trained_artifacts, "churn")
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
        as_of = snapshot_as_of(snapshot)
        histories = [History(customer_lines(cleaned, cid), as_of) for cid in chosen[:10]]
        by_lines = client.predict_churn(histories).results
    np.testing.assert_allclose([r.probability for r in by_lines], expected[:10], atol=1e-6, rtol=0)


def test_served_spend_and_segments_equal_offline(served, trained_artifacts, offline) -> None:
    _, _, ids, values, names = offline
    picks = np.linspace(0, len(ids) - 1, N_CHECKED).astype(int)
    chosen = [ids[i] for i in picks]
    _, spend = latest(trained_artifacts, "spend")
    expected_spend = _onnx(
        trained_artifacts, "spend", values[picks][:, _columns(names, spend["features"])], "spend"
    )
    _, seg = latest(trained_artifacts, "segmentation")
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

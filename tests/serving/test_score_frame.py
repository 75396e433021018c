"""Bulk scoring through the client (`score_frame` and `crm-client score`): every kind, by
features (columnar batches) and by id, answers as per-customer calls do, in input order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clients import CrmClient
from tests.helpers import run_cli
from tests.serving.helpers import model_features, snapshot

ROWS = 250
BATCH_ROWS = 100  # three stream messages, the last one partial
KINDS = {"churn": "churn", "spend": "spend", "segments": "segmentation"}
COMPARED = {
    "churn": ["risk_level"],
    "spend": [],
    "segments": [
        "segment", "cluster_id", "recency_score", "frequency_score", "monetary_score",
        "recommended_action",
    ],
}  # fmt: skip
CLOSE = {"churn": "probability", "spend": "total"}


def _frame(artifacts: Path, model: str) -> pd.DataFrame:
    ids, values, names, _ = snapshot(artifacts)
    features = model_features(artifacts, model)
    return pd.DataFrame(
        {"customer_id": ids[:ROWS], **{n: values[:ROWS, names.index(n)] for n in features}}
    )


def _expected(client: CrmClient, kind: str, ids: list[str]) -> pd.DataFrame:
    call = {
        "churn": client.scoring.predict_churn,
        "spend": client.scoring.predict_spend,
        "segments": client.scoring.assign_segments,
    }[kind]
    return pd.DataFrame([vars(r) for r in call(ids).results])


@pytest.mark.parametrize("kind", list(KINDS))
def test_score_frame_matches_per_customer_calls(served, trained_artifacts: Path, kind: str) -> None:
    frame = _frame(trained_artifacts, KINDS[kind])
    ids = frame["customer_id"].tolist()
    with CrmClient(served.target) as client:
        want = _expected(client, kind, ids)
        assert want["error"].isna().all()
        for form, given in (("features", frame), ("ids", frame[["customer_id"]])):
            got = client.score_frame(kind, given, batch_rows=BATCH_ROWS)
            assert got["row"].tolist() == list(range(ROWS)), form
            assert got["customer_id"].tolist() == ids, form
            assert (got["model"] == got["model"].iloc[0]).all(), form
            for column in COMPARED[kind]:
                assert got[column].tolist() == want[column].tolist(), (form, column)
            if kind in CLOSE:
                np.testing.assert_allclose(
                    got[CLOSE[kind]], want[CLOSE[kind]], rtol=1e-5, atol=1e-6, err_msg=form
                )


def test_cli_score_writes_the_segments_of_a_csv(
    served, trained_artifacts: Path, tmp_path: Path
) -> None:
    frame = _frame(trained_artifacts, "segmentation")
    source, output = tmp_path / "customers.csv", tmp_path / "segments.csv"
    frame.to_csv(source, index=False)
    out = run_cli(
        "--target", served.target, "score", "segments", "--input", str(source),
        "--output", str(output), "--batch-rows", str(BATCH_ROWS), "--quiet",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert f"wrote {ROWS} rows" in out.stdout
    written = pd.read_csv(output, dtype={"customer_id": str})
    with CrmClient(served.target) as client:
        want = _expected(client, "segments", frame["customer_id"].tolist())
    assert written["customer_id"].tolist() == frame["customer_id"].tolist()
    for column in COMPARED["segments"]:
        assert written[column].tolist() == want[column].tolist(), column

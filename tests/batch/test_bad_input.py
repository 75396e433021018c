"""Bad input: a missing column fails the run at the start, naming it (exit 2, no traceback,
no output); wrong types, unknown ids and malformed dates become that row's `error`; an output
is only ever seen complete."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from batch.write import OutputWriter, partial_name
from tests.batch.runner import run_batch


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_missing_feature_column_fails_at_start(trained_artifacts, feature_rows, tmp_path) -> None:
    feature_rows.drop(columns=["frequency"]).to_csv(tmp_path / "in.csv", index=False)
    run = run_batch(tmp_path / "in.csv", tmp_path / "out.parquet", trained_artifacts)
    assert run.code == 2
    assert "'frequency' is missing" in run.stderr
    assert "Traceback" not in run.stderr
    assert not run.output.exists()
    assert _leftovers(tmp_path) == []


def test_lines_without_a_required_column_or_as_of_fail_at_start(
    trained_artifacts, lines_frame, tmp_path
) -> None:
    lines_frame.head(50).to_csv(tmp_path / "lines.csv", index=False)
    no_as_of = run_batch(tmp_path / "lines.csv", tmp_path / "a.parquet", trained_artifacts)
    assert no_as_of.code == 2
    assert "--as-of" in no_as_of.stderr
    lines_frame.head(50).drop(columns=["Price"]).to_csv(tmp_path / "np.csv", index=False)
    no_price = run_batch(
        tmp_path / "np.csv", tmp_path / "b.parquet", trained_artifacts, "--kind", "lines",
        "--as-of", "2030-01-01",
    )  # fmt: skip
    assert no_price.code == 2
    assert "'Price' is missing" in no_price.stderr
    assert not (tmp_path / "a.parquet").exists() and not (tmp_path / "b.parquet").exists()


def test_wrong_values_are_row_errors(trained_artifacts, feature_rows, tmp_path) -> None:
    frame = feature_rows.head(20).astype({"recency_days": object, "monetary": object})
    frame.loc[3, "recency_days"] = "abc"  # not a number
    frame.loc[5, "frequency"] = -2.0  # a count below 0
    frame.loc[7, "monetary"] = None  # empty cell
    frame.loc[9, "tenure_days"] = float("inf")
    frame.to_csv(tmp_path / "in.csv", index=False)
    run = run_batch(tmp_path / "in.csv", tmp_path / "out.parquet", trained_artifacts)
    assert run.code == 0, run.stderr
    out = run.frame()
    assert len(out) == 20
    errors = out["error"]
    assert "recency_days: not a number" in errors[3]
    assert errors[5] == "frequency: must be >= 0"
    assert errors[7] == "monetary: missing value"
    assert errors[9] == "tenure_days: must be a finite number"
    bad = [3, 5, 7, 9]
    assert out.loc[bad, "churn_probability"].isna().all()
    assert out.drop(index=bad)["error"].isna().all()
    assert out.drop(index=bad)["churn_probability"].notna().all()
    assert "errors: 4" in run.stderr


def test_unknown_ids_are_row_errors(trained_artifacts, feature_rows, tmp_path) -> None:
    ids = [*feature_rows["customer_id"].head(5), "no-such-customer", ""]
    pd.DataFrame({"customer_id": ids}).to_csv(tmp_path / "ids.csv", index=False)
    run = run_batch(tmp_path / "ids.csv", tmp_path / "out.parquet", trained_artifacts)
    assert run.code == 0, run.stderr
    out = run.frame()
    assert out["error"].head(5).isna().all()
    assert "not in the feature snapshot" in out["error"][5]
    assert out["error"][6] == "customer_id: must not be empty"
    alone = run_batch(
        tmp_path / "ids.csv", tmp_path / "alone.parquet", trained_artifacts, "--chunk-rows", "1"
    )  # a chunk holding one unknown id: the handler's NOT_FOUND, still a row error
    assert alone.code == 0
    assert alone.frame()["error"].tolist() == out["error"].tolist()


def test_malformed_lines_fail_their_customer_only(trained_artifacts, lines_frame, tmp_path) -> None:
    ids = lines_frame["Customer ID"].astype(str).drop_duplicates().head(4).tolist()
    lines = lines_frame[lines_frame["Customer ID"].astype(str).isin(ids)].astype(
        {"InvoiceDate": str, "Quantity": object}
    )
    first = lines.index[lines["Customer ID"].astype(str) == ids[0]][0]
    second = lines.index[lines["Customer ID"].astype(str) == ids[1]][0]
    lines.loc[first, "InvoiceDate"] = "31/31/2024 25:00"
    lines.loc[second, "Quantity"] = "lots"
    lines.to_csv(tmp_path / "lines.csv", index=False)
    run = run_batch(
        tmp_path / "lines.csv", tmp_path / "out.parquet", trained_artifacts, "--as-of", "2030-01-01"
    )
    assert run.code == 0, run.stderr
    out = run.frame().set_index("customer_id")
    assert out["error"][ids[0]].startswith("InvoiceDate: not a date-time")
    assert out["error"][ids[1]].startswith("Quantity: not a number")
    assert out.loc[ids[2:], "error"].isna().all()
    assert out.loc[ids[2:], "churn_probability"].notna().all()


def test_output_appears_only_when_complete(tmp_path) -> None:
    schema = pa.schema([pa.field("customer_id", pa.string())])
    target = tmp_path / "out.parquet"
    with pytest.raises(RuntimeError), OutputWriter(target, schema) as out:
        out.write(pa.table({"customer_id": ["a"]}, schema=schema))
        assert partial_name(target).exists() and not target.exists()
        raise RuntimeError("the run fails halfway")
    assert not target.exists() and not partial_name(target).exists()
    with OutputWriter(target, schema) as out:
        out.write(pa.table({"customer_id": ["a"]}, schema=schema))
    assert pd.read_parquet(target)["customer_id"].tolist() == ["a"]
    assert not partial_name(target).exists()

"""The same customers through the local engine (in-process and in worker processes), the Ray
engine and a real server's gRPC API give identical numbers, risk levels, recommendations,
segments and spend: by feature rows, by customer id and by raw transaction lines."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from batch.read import row_ranges
from clients import CrmClient
from clients.scoring import History
from tests.batch.conftest import N_CUSTOMERS
from tests.batch.runner import run_batch
from tests.serving.helpers import (
    customer_lines,
    latest,
    model_features,
    snapshot,
    snapshot_as_of,
)

N_LINES_CUSTOMERS = 40


def _grpc(
    client: CrmClient, customers: Callable[[str], list], ids: list[str], categories: list[str]
) -> pd.DataFrame:
    """The typed client's answers (`customers(model)`: the input as each model takes it) as
    the batch output's columns."""
    churn = client.predict_churn(customers("churn")).results
    spend = client.predict_spend(customers("spend")).results
    segments = client.assign_segments(customers("segmentation")).results
    frame = pd.DataFrame(
        {
            "customer_id": ids,
            "churn_probability": [r.probability for r in churn],
            "churn_risk": [r.risk_level for r in churn],
            "churn_recommendations": [";".join(r.recommendations) for r in churn],
            "spend_total": [r.total for r in spend],
            "segment": [r.segment for r in segments],
            "segment_action": [r.recommended_action for r in segments],
            "cluster_id": [r.cluster_id for r in segments],
            "recency_score": [r.recency_score for r in segments],
            "frequency_score": [r.frequency_score for r in segments],
            "monetary_score": [r.monetary_score for r in segments],
        }
    )
    for c in categories:
        frame[f"spend_{c}"] = [r.categories[c] for r in spend]
    return frame


def _same(batch: pd.DataFrame, expected: pd.DataFrame, case: str) -> None:
    assert batch["error"].isna().all(), batch["error"].dropna().head()
    got = batch[expected.columns].reset_index(drop=True)
    for column in expected.columns:
        left, right = got[column].to_numpy(), expected[column].to_numpy()
        if left.dtype.kind == "f":
            np.testing.assert_array_equal(
                left, right.astype(np.float64), err_msg=f"{case}: {column}"
            )
        else:
            assert left.astype(str).tolist() == right.astype(str).tolist(), (case, column)


def _engines(path: Path, tmp: Path, artifacts: Path, *extra: str) -> dict[str, pd.DataFrame]:
    runs = {
        "local": run_batch(path, tmp / "local.parquet", artifacts, "--workers", "1", *extra),
        "local-processes": run_batch(
            path, tmp / "procs.parquet", artifacts, "--workers", "2", "--chunk-rows", "50", *extra
        ),
        "ray": run_batch(
            path, tmp / "ray.parquet", artifacts, "--engine", "ray", "--chunk-rows", "50", *extra
        ),
    }
    for name, run in runs.items():
        assert run.code == 0, (name, run.stderr)
    return {name: run.frame() for name, run in runs.items()}


def test_feature_rows_and_ids_agree_with_grpc(
    ray_session, served, trained_artifacts, feature_rows, tmp_path
) -> None:
    categories = list(latest(trained_artifacts, "spend")[1]["serving"]["categories"])
    ids = feature_rows["customer_id"].tolist()
    feature_rows.to_csv(tmp_path / "features.csv", index=False)
    by_features = _engines(tmp_path / "features.csv", tmp_path / "f", trained_artifacts)
    pd.DataFrame({"customer_id": ids}).to_parquet(tmp_path / "ids.parquet")
    by_id = _engines(tmp_path / "ids.parquet", tmp_path / "i", trained_artifacts)
    with CrmClient(served.target) as client:
        # the file's values as a client reads them (float64), not the snapshot's float32:
        # text -> float64 -> float32 may round differently from text -> float32
        sent = pd.read_csv(tmp_path / "features.csv", dtype={"customer_id": str})

        def named(model: str) -> list[dict[str, float]]:
            names = model_features(trained_artifacts, model)
            return [{n: float(row[n]) for n in names} for _, row in sent.iterrows()]

        expected_features = _grpc(client, named, ids, categories)
        expected_ids = _grpc(client, lambda _: ids, ids, categories)
    for form, frames, expected in (
        ("features", by_features, expected_features),
        ("ids", by_id, expected_ids),
    ):
        for name, frame in frames.items():
            assert len(frame) == N_CUSTOMERS, name
            _same(frame, expected, f"{form} {name}")


def test_ray_reads_small_row_groups_in_place_as_local_chunks(
    ray_session, trained_artifacts, feature_rows, tmp_path
) -> None:
    """A Parquet input of small row groups is not staged: Ray's actors read row ranges that
    straddle groups (70-row groups, 52-row chunks) and score the chunks the local engine
    scores, so the outputs are equal to the last bit."""
    path = tmp_path / "groups.parquet"
    pq.write_table(
        pa.Table.from_pandas(feature_rows, preserve_index=False), path, row_group_size=70
    )
    ranges = row_ranges(path, 52)
    assert ranges is not None and len(ranges) > 1  # read in place, in more than one unit
    assert any(start % 70 and stop % 70 for start, stop in ranges)  # some straddle groups
    frames = {
        engine: run_batch(
            path, tmp_path / f"{engine}.parquet", trained_artifacts,
            "--engine", engine, "--workers", "1", "--chunk-rows", "52",
        )
        for engine in ("local", "ray")
    }  # fmt: skip
    for engine, run in frames.items():
        assert run.code == 0, (engine, run.stderr)
    local, ray = (run.frame() for run in frames.values())
    assert len(local) == N_CUSTOMERS and local["error"].isna().all()
    pd.testing.assert_frame_equal(local, ray, check_exact=True)


def test_raw_lines_agree_with_grpc(
    ray_session, served, trained_artifacts, lines_frame, tmp_path
) -> None:
    """One partition: customers sit at the same places in the engines' calls as in the one
    served call, so every number is equal. Many partitions: the same customers, but scored in
    other calls, where onnxruntime may round the last float32 place differently."""
    *_, manifest = snapshot(trained_artifacts)
    as_of = snapshot_as_of(manifest)
    chosen = lines_frame["Customer ID"].astype(str).drop_duplicates().head(N_LINES_CUSTOMERS)
    lines = lines_frame[lines_frame["Customer ID"].astype(str).isin(set(chosen))]
    lines.sample(frac=1.0, random_state=3).to_csv(tmp_path / "lines.csv", index=False)  # any order
    at = ("--as-of", as_of.isoformat())
    frames = _engines(tmp_path / "lines.csv", tmp_path / "l", trained_artifacts, *at)
    categories = list(latest(trained_artifacts, "spend")[1]["serving"]["categories"])
    ids = frames["local"]["customer_id"].tolist()
    assert sorted(ids) == sorted(chosen.tolist())
    histories = [History(customer_lines(lines, cid), as_of) for cid in ids]
    with CrmClient(served.target) as client:
        expected = _grpc(client, lambda _: histories, ids, categories)
    for name, frame in frames.items():
        _same(frame, expected, f"lines {name}")
    spilled = run_batch(
        tmp_path / "lines.csv", tmp_path / "spilled.parquet", trained_artifacts, *at,
        "--workers", "1", "--partition-mb", "0.01",
    )  # fmt: skip
    assert spilled.code == 0, spilled.stderr
    got = spilled.frame().set_index("customer_id").loc[ids].reset_index()
    for column in expected.columns:
        if got[column].dtype.kind == "f":
            np.testing.assert_allclose(got[column], expected[column], rtol=1e-6, err_msg=column)
        else:
            assert got[column].astype(str).tolist() == expected[column].astype(str).tolist()


def test_batch_plane_scores_trees_with_the_server_engine(trained_artifacts: Path) -> None:
    """The batch engines build the server's data plane, so the tree models run on the same
    engine as served (crm.trees when its probe at load matched onnxruntime), segmentation on
    onnxruntime, and `tree_evaluator=False` (--no-tree-evaluator) leaves all to onnxruntime."""
    from batch.plane import BatchPlane
    from crm import trees

    def engines(**options: bool) -> dict[str, str]:
        plane = BatchPlane.load(trained_artifacts, **options)
        try:
            return {m: plane.model(m).model.engine for m in ("churn", "spend", "segmentation")}
        finally:
            plane.close()

    tree_engine = "crm.trees" if trees.NATIVE else "onnxruntime"
    assert engines() == {"churn": tree_engine, "spend": tree_engine, "segmentation": "onnxruntime"}
    assert set(engines(tree_evaluator=False).values()) == {"onnxruntime"}


def test_no_tree_evaluator_gives_the_same_bits(trained_artifacts, feature_rows, tmp_path) -> None:
    """crm-batch --no-tree-evaluator (onnxruntime for every graph) writes exactly what the
    default run (crm.trees for the tree models) writes."""
    feature_rows.to_parquet(tmp_path / "features.parquet")
    runs = {
        flag: run_batch(
            tmp_path / "features.parquet", tmp_path / f"out{len(flag)}.parquet",
            trained_artifacts, "--workers", "1", *flag,
        )
        for flag in ((), ("--no-tree-evaluator",))
    }  # fmt: skip
    for flag, run in runs.items():
        assert run.code == 0, (flag, run.stderr)
    by_trees, by_ort = (run.frame() for run in runs.values())
    assert by_trees["error"].isna().all()
    pd.testing.assert_frame_equal(by_trees, by_ort, check_exact=True)

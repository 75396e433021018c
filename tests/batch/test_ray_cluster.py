"""`crm-batch --engine ray --address HOST:PORT`, the documented cluster command: run as a user
runs it, joining a Ray head already running on this machine (as a cluster is used: started
once, joined by each job, with token authentication), it scores exactly what the local engine
scores."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.batch.conftest import N_CUSTOMERS
from tests.batch.runner import run_batch
from tests.rayhead import ray_head

REPO = Path(__file__).resolve().parents[2]


def test_joining_a_running_head_scores_as_the_local_engine(
    trained_artifacts: Path, feature_rows: pd.DataFrame, tmp_path: Path
) -> None:
    pytest.importorskip("ray")
    path = tmp_path / "features.parquet"
    pq.write_table(
        pa.Table.from_pandas(feature_rows, preserve_index=False), path, row_group_size=64
    )
    chunks = ("--chunk-rows", "64")
    local = run_batch(
        path, tmp_path / "local.parquet", trained_artifacts, "--workers", "1", *chunks
    )
    assert local.code == 0, local.stderr
    with ray_head(cpus=2) as head:
        joined = subprocess.run(
            [sys.executable, "-m", "batch", "--input", str(path), "--output",
             str(tmp_path / "ray.parquet"), "--artifacts", str(trained_artifacts),
             "--engine", "ray", "--address", head.address, *chunks],
            cwd=REPO, env=head.env(), capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
    assert joined.returncode == 0, joined.stderr[-3000:]
    assert f"rows: {N_CUSTOMERS:,}" in joined.stderr
    frame = pd.read_parquet(tmp_path / "ray.parquet")
    assert len(frame) == N_CUSTOMERS and frame["error"].isna().all()
    pd.testing.assert_frame_equal(local.frame(), frame, check_exact=True)

"""Inputs for bulk scoring built from the session's trained artifacts, one Ray session per
module that asks for it (2 CPUs: actors take half a CPU each, see batch.ray_engine)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import SYNTHETIC
from tests.serverproc import RunningServer, launch
from tests.serving.helpers import cleaned_lines, snapshot

N_CUSTOMERS = 300


@pytest.fixture(scope="module")
def served(
    trained_artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    server = launch(trained_artifacts, tmp_path_factory.mktemp("data"))
    yield server
    server.kill()


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def feature_rows(trained_artifacts: Path) -> pd.DataFrame:
    """The snapshot's first customers as a feature-rows frame: customer_id + every feature."""
    ids, values, names, _ = snapshot(trained_artifacts)
    frame = pd.DataFrame(values[:N_CUSTOMERS], columns=names)
    frame.insert(0, "customer_id", ids[:N_CUSTOMERS])
    return frame


@pytest.fixture(scope="module")
def lines_frame(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The cleaned lines the artifacts were trained on (Online Retail II columns)."""
    return cleaned_lines(SYNTHETIC, tmp_path_factory.mktemp("synthetic"))

"""One real server over the trained artifacts for the Open Inference Protocol tests, and one
feature row (the churn model's training means) the typed and the OIP calls both score."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serverproc import RunningServer, launch


@pytest.fixture(scope="module")
def oip_server(
    trained_artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    server = launch(trained_artifacts, tmp_path_factory.mktemp("oip-data"))
    yield server
    server.kill()


@pytest.fixture(scope="module")
def churn_row(trained_artifacts: Path) -> dict[str, float]:
    """Feature name -> value in the model's order: the training means, a plausible customer."""
    manifest = json.loads((trained_artifacts / "churn" / "1" / "manifest.json").read_text())
    means = manifest["serving"]["feature_means"]
    return {name: float(means[name]) for name in manifest["features"]}

"""One real server per module on the session's trained artifacts (tests/conftest.py), and the
cleaned transaction lines those artifacts were trained on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import SYNTHETIC
from tests.serverproc import RunningServer, launch
from tests.serving.helpers import cleaned_lines, training_day_clock


@pytest.fixture(scope="module")
def served(
    trained_artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    server = launch(
        trained_artifacts,
        tmp_path_factory.mktemp("data"),
        [
            "--alert-queue-size", "20", "--max-request-rows", "60000",
            *training_day_clock(trained_artifacts, tmp_path_factory.mktemp("clock")),
        ],
    )  # fmt: skip
    yield server
    server.kill()


@pytest.fixture(scope="session")
def trained_lines(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The cleaned lines behind `trained_artifacts`, regenerated from SYNTHETIC's seed."""
    return cleaned_lines(SYNTHETIC, tmp_path_factory.mktemp("synthetic"))

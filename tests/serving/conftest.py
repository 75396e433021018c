"""One real server per module on the session's trained artifacts (tests/conftest.py), and the
cleaned transaction lines those artifacts were trained on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import SYNTHETIC
from tests.serverproc import RunningServer, launch
from tests.serving.helpers import cleaned_lines, latest


@pytest.fixture(scope="module")
def served(
    trained_artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    # The server's day ends at the training as-of (test clock), so by-id answers are the
    # training snapshot's rows; tests/serving/test_freshness.py moves the clock.
    clock = tmp_path_factory.mktemp("clock") / "now"
    as_of = pd.Timestamp(latest(trained_artifacts, "features")[1]["as_of"])
    clock.write_text((as_of - pd.Timedelta(seconds=1)).isoformat())
    server = launch(
        trained_artifacts,
        tmp_path_factory.mktemp("data"),
        [
            "--alert-queue-size", "20", "--max-request-rows", "60000",
            "--test-clock-file", str(clock),
        ],
    )  # fmt: skip
    yield server
    server.kill()


@pytest.fixture(scope="session")
def trained_lines(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The cleaned lines behind `trained_artifacts`, regenerated from SYNTHETIC's seed."""
    return cleaned_lines(SYNTHETIC, tmp_path_factory.mktemp("synthetic"))

"""One real server for the module, on the artifacts trained once per session (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serverproc import RunningServer, launch


@pytest.fixture(scope="module")
def served(
    trained_artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    server = launch(
        trained_artifacts,
        tmp_path_factory.mktemp("data"),
        ["--alert-queue-size", "20", "--max-request-rows", "60000"],
    )
    yield server
    server.kill()

"""Shared fixtures: a factory that runs the real server as a subprocess on loopback, and the
artifacts the real training module trains once per test run for the tests that score."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.serverproc import REPO, RunningServer, launch

StartServer = Callable[..., RunningServer]

# The synthetic data `trained_artifacts` trains on (python -m training arguments).
SYNTHETIC = ["--synthetic", "--customers", "600", "--days", "540", "--seed", "11"]


@pytest.fixture(scope="session")
def trained_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every artifact (models, feature snapshot, inventory) from one `python -m training` run
    on SYNTHETIC, shared by the serving and campaign tests: copy it before changing it."""
    out = tmp_path_factory.mktemp("trained")
    proc = subprocess.run(
        [sys.executable, "-m", "training", *SYNTHETIC, "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


@pytest.fixture
def start_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartServer]:
    """start_server(artifacts=None, data_dir=None, extra_args=()) -> RunningServer; stopped after."""
    started: list[RunningServer] = []

    def _start(
        artifacts: Path | None = None,
        data_dir: Path | None = None,
        extra_args: Sequence[str] = (),
        **kwargs: object,
    ) -> RunningServer:
        server = launch(
            artifacts or tmp_path_factory.mktemp("artifacts"),
            data_dir or tmp_path_factory.mktemp("data"),
            extra_args,
            **kwargs,  # type: ignore[arg-type]
        )
        started.append(server)
        return server

    yield _start
    for server in started:
        server.kill()

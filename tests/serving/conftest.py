"""Artifacts trained once per session by the real training module on small synthetic data,
and one real server on them for the module."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serverproc import REPO, RunningServer, launch

SYNTHETIC = ["--synthetic", "--customers", "600", "--days", "540", "--seed", "11"]


@pytest.fixture(scope="session")
def trained_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
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


@pytest.fixture(scope="module")
def served(
    trained_artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    server = launch(
        trained_artifacts,
        tmp_path_factory.mktemp("data"),
        ["--alert-queue-size", "20", "--max-batch-rows", "60000"],
    )
    yield server
    server.kill()

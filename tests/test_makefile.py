"""The Makefile as a new user drives it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.serverproc import REPO


def test_serve_flags_do_not_reach_the_default_training(tmp_path: Path) -> None:
    """`make serve ARGS="--port 6000"` on a fresh clone trains the default models first; the
    server's flags must not be handed to training, which refuses them (it did)."""
    planned = subprocess.run(
        ["make", "-n", "--no-print-directory", "default-artifacts", f"ARTIFACTS={tmp_path}",
         "ARGS=--port 6000"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    training = [line for line in planned.splitlines() if " -m training " in line]
    assert len(training) == 1, planned
    assert "--port" not in training[0]
    assert f"--out {tmp_path}" in training[0]

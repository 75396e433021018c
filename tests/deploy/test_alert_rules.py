"""deploy/prometheus: promtool checks the rules and the scrape config, and runs the unit cases
of alerts_test.yml (an error burst fires, steady traffic does not, ...)."""

from __future__ import annotations

import subprocess

import pytest

from tests.deploy.manifests import DEPLOY, tool

PROM = DEPLOY / "prometheus"


@pytest.mark.parametrize(
    "args",
    [["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"],
     ["check", "config", "prometheus.yml"]],
)  # fmt: skip
def test_promtool(args: list[str]) -> None:
    proc = subprocess.run(
        [tool("promtool"), *args], cwd=PROM, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr

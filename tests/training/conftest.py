"""One real training run on the default synthetic data, shared by every test that needs models."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from training.pipeline import RunConfig, RunResult, run
from training.synthetic import SyntheticConfig

SYNTHETIC = SyntheticConfig(customers=3000, days=730, seed=7)


@dataclass(frozen=True)
class TrainedRun:
    result: RunResult
    out: Path
    config: RunConfig
    log: list[str]


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    out = tmp_path_factory.mktemp("training-artifacts")
    config = RunConfig(out=out, synthetic=SYNTHETIC)
    log: list[str] = []
    result = run(config, log.append)
    return TrainedRun(result, out, config, log)

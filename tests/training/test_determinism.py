"""Two runs with the same seed give the same data, metrics and model bytes."""

from __future__ import annotations

from pathlib import Path

from crm.artifacts import list_names, read_manifest
from training.pipeline import RunConfig, run
from training.synthetic import SyntheticConfig


def test_same_seed_same_metrics(tmp_path: Path) -> None:
    synthetic = SyntheticConfig(customers=500, days=450, seed=13)
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        run(RunConfig(out=out, synthetic=synthetic), lambda _line: None)
    names = list_names(outs[0])
    assert names == list_names(outs[1]) and len(names) == 8
    for name in names:
        first, second = (read_manifest(out / name / "1") for out in outs)
        assert first["dataset"] == second["dataset"]
        assert first.get("metrics") == second.get("metrics")
        assert first["files"] == second["files"], name  # byte-identical models and snapshots

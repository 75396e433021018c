"""kill -9 during concurrent appends and saves loses nothing acknowledged (a few cycles here;
`make durability ARGS="--cycles 50"` runs many)."""

from __future__ import annotations

from pathlib import Path

from tests.integrity.durability import run


def test_acknowledged_writes_survive_kill_9_cycles(tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    report = run(3, tmp_path / "data", artifacts, seed=16, log=lambda _: None)
    assert report.cycles == 3
    assert report.appends >= 3 * 4 // 2 and report.campaigns >= 1, report
    assert report.checks >= 2 * report.appends, report

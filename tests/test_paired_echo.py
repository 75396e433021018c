"""benchmarks.paired_echo.summarise: ratios pair runs of the same round, failed runs drop out."""

from __future__ import annotations

from typing import Any

from benchmarks.paired_echo import summarise


def _run(
    case: str, in_flight: int, round_: int, req_per_s: float, ok: bool = True
) -> dict[str, Any]:
    return {"case": case, "in_flight": in_flight, "round": round_, "req_per_s": req_per_s, "ok": ok}


def test_each_ratio_uses_the_echo_of_its_own_round() -> None:
    rows = [
        _run("echo_aio", 16, 0, 1000.0),
        _run("churn_features", 16, 0, 900.0),
        _run("echo_aio", 16, 1, 2000.0),
        _run("churn_features", 16, 1, 1600.0),
        _run("echo_aio", 16, 2, 1500.0),
        _run("churn_features", 16, 2, 1200.0),
    ]
    (paired,) = summarise(rows)
    assert (paired.case, paired.in_flight) == ("churn_features", 16)
    assert paired.ratios == [0.9, 0.8, 0.8]
    assert paired.median_ratio == 0.8


def test_a_round_with_a_failed_run_is_left_out() -> None:
    rows = [
        _run("echo_aio", 64, 0, 1000.0),
        _run("churn_id", 64, 0, 1100.0),
        _run("echo_aio", 64, 1, 1000.0, ok=False),
        _run("churn_id", 64, 1, 5000.0),
        _run("echo_aio", 64, 2, 1000.0),
        _run("churn_id", 64, 2, 500.0, ok=False),
    ]
    (paired,) = summarise(rows)
    assert paired.ratios == [1.1]
    assert summarise([_run("echo_aio", 16, 0, 1000.0)]) == []

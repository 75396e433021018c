"""Two replicas sharing PostgreSQL score from the same lines: a batch ingested on one is
scored by id on the other (within --freshness-poll-seconds), with the same probability, a
retry on the other replica counts once, a risk rise it causes alerts a watch on the other, and
the daily ageing alerts each replica's watchers once."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pandas as pd
import pytest

from crm.v1 import churn_pb2, churn_pb2_grpc, common_pb2, transactions_pb2
from crm.v1 import transactions_pb2_grpc as tx_grpc
from tests.serverproc import RunningServer
from tests.serving.helpers import AlertWatch, latest, training_day_clock


def _line(customer: str, number: int, when: pd.Timestamp) -> transactions_pb2.IngestLine:
    line = common_pb2.TransactionLine(
        invoice="550001", stock_code="85123A", quantity=number, price=3.0, customer_id=customer
    )
    line.invoice_date.FromNanoseconds(when.value)
    return transactions_pb2.IngestLine(line=line, line_number=number)


def _probability(server: RunningServer, customer: str) -> float:
    stub = churn_pb2_grpc.ChurnServiceStub(server.channel)
    request = churn_pb2.PredictChurnRequest(customers=[{"customer_id": customer}])
    return stub.PredictChurn(request, timeout=10).predictions[0].probability


@pytest.fixture
def pair(start_fleet, trained_artifacts: Path, tmp_path: Path) -> list[RunningServer]:
    """Two replicas on the trained artifacts whose test clock ends the day at the training as-of."""
    clock = training_day_clock(trained_artifacts, tmp_path)
    return start_fleet(2, (*clock, "--freshness-poll-seconds", "0.1"), artifacts=trained_artifacts)


def test_a_line_ingested_on_one_replica_is_scored_on_the_other(
    pair: list[RunningServer], trained_artifacts: Path
) -> None:
    a, b = pair
    as_of = pd.Timestamp(latest(trained_artifacts, "features")[1]["as_of"])
    lines = [_line("FLEET-NEW", n, as_of - pd.Timedelta(days=5)) for n in (1, 2)]
    request = transactions_pb2.IngestTransactionsRequest(lines=lines)
    assert tx_grpc.TransactionServiceStub(a.channel).IngestTransactions(request).accepted == 2
    on_a = _probability(a, "FLEET-NEW")
    deadline = time.monotonic() + 20
    while True:  # b applies what a stored on its next poll of the shared store
        try:
            on_b = _probability(b, "FLEET-NEW")
            break
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.NOT_FOUND
            assert time.monotonic() < deadline, "replica b never saw the line"
            time.sleep(0.05)
    assert on_b == on_a
    retry = tx_grpc.TransactionServiceStub(b.channel).IngestTransactions(request)
    assert (retry.accepted, retry.duplicates) == (0, 2)
    assert _probability(a, "FLEET-NEW") == on_a


def test_a_risk_rise_from_a_line_ingested_elsewhere_alerts_a_watch_here(
    pair: list[RunningServer], trained_artifacts: Path
) -> None:
    a, b = pair
    as_of = pd.Timestamp(latest(trained_artifacts, "features")[1]["as_of"])
    watch = AlertWatch(b.channel, trained_artifacts)
    stale = [_line("FLEET-STALE", 1, as_of - pd.Timedelta(days=300))]
    request = transactions_pb2.IngestTransactionsRequest(lines=stale)
    assert tx_grpc.TransactionServiceStub(a.channel).IngestTransactions(request).accepted == 1
    (alert, *_) = watch.wait_for(lambda x: x.customer_id == "FLEET-STALE")
    watch.close()
    assert alert.reason == "ingested_line"
    assert alert.previous_risk_level == churn_pb2.RISK_LEVEL_UNSPECIFIED
    assert alert.probability == _probability(a, "FLEET-STALE")


def test_the_daily_ageing_alerts_each_replica_s_watch_once(
    pair: list[RunningServer], trained_artifacts: Path, tmp_path: Path
) -> None:
    """Both replicas age the same customers when the shared clock passes midnight; each
    tells its own watchers, so a watcher hears of a rise once, with the same numbers."""
    a, b = pair
    as_of = pd.Timestamp(latest(trained_artifacts, "features")[1]["as_of"])
    watches = {
        "a": AlertWatch(a.channel, trained_artifacts),
        "b": AlertWatch(b.channel, trained_artifacts),
    }
    clock = tmp_path / "clock"  # the file training_day_clock gave both replicas
    moved = clock.with_suffix(".tmp")
    moved.write_text((as_of + pd.Timedelta(days=60)).isoformat())
    moved.replace(clock)
    (first, *_) = watches["a"].wait_for(lambda x: x.reason == "daily_ageing")
    (on_b, *_) = watches["b"].wait_for(
        lambda x: x.reason == "daily_ageing" and x.customer_id == first.customer_id
    )
    assert (on_b.probability, on_b.risk_level, on_b.previous_risk_level) == (
        first.probability, first.risk_level, first.previous_risk_level,
    )  # fmt: skip
    assert on_b.as_of == first.as_of and on_b.risk_level > on_b.previous_risk_level
    # a later rise on a, seen by b after b's ageing batch: every alert of that batch is in
    later = [_line("FLEET-LATER", 1, as_of - pd.Timedelta(days=300))]
    request = transactions_pb2.IngestTransactionsRequest(lines=later)
    assert tx_grpc.TransactionServiceStub(a.channel).IngestTransactions(request).accepted == 1
    watches["b"].wait_for(lambda x: x.customer_id == "FLEET-LATER")
    for watch in watches.values():
        watch.close()
    heard = [
        x for x in watches["b"].alerts
        if x.reason == "daily_ageing" and x.customer_id == first.customer_id
    ]  # fmt: skip
    assert len(heard) == 1

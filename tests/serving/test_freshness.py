"""Fresh scores on a real server: by-id features age with the server's clock (a test-only clock
file moves it days ahead), ingested lines count within the call that acknowledges them, a
retried batch counts once, risk rises raise alerts nobody scored for, and kill -9 after an
acknowledgement loses nothing. Every served score is checked against the offline pipeline:
crm.features over the same lines at the same as-of time, scored by the exported model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from google.rpc import error_details_pb2, status_pb2

from crm import features as feat
from crm.line_rules import PRICE_RULE, QUANTITY_RULE
from crm.v1 import (
    churn_pb2,
    churn_pb2_grpc,
    common_pb2,
    integrity_pb2,
    integrity_pb2_grpc,
    model_pb2,
    model_pb2_grpc,
    segmentation_pb2,
    segmentation_pb2_grpc,
    spend_pb2,
    spend_pb2_grpc,
    transactions_pb2,
)
from crm.v1 import transactions_pb2_grpc as tx_grpc
from tests.helpers import run_cli
from tests.serverproc import RunningServer, launch
from tests.serving.helpers import AlertWatch, latest

DAY = pd.Timedelta(days=1)


class Clock:
    """The server's test clock file."""

    def __init__(self, path: Path, now: pd.Timestamp) -> None:
        self.path = path
        self.set(now)

    def set(self, now: pd.Timestamp) -> None:
        self.now = now
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(now.isoformat())
        tmp.replace(self.path)


@pytest.fixture(scope="module")
def as_of(trained_artifacts: Path) -> pd.Timestamp:
    return pd.Timestamp(latest(trained_artifacts, "features")[1]["as_of"])


@pytest.fixture
def fresh(
    trained_artifacts: Path, tmp_path: Path, as_of: pd.Timestamp
) -> Iterator[tuple[RunningServer, Clock]]:
    """A server whose clock starts one second before the training as-of (so its day ends at
    the training as-of: today's by-id answer is the training snapshot)."""
    clock = Clock(tmp_path / "clock", as_of - pd.Timedelta(seconds=1))
    args = ["--test-clock-file", str(clock.path), "--freshness-poll-seconds", "0.1"]
    server = launch(trained_artifacts, tmp_path / "data", args)
    server.clock_args = args  # type: ignore[attr-defined]
    yield server, clock
    server.kill()


class Offline:
    """The training pipeline's score for given lines at an as-of time."""

    def __init__(self, artifacts: Path, lines: pd.DataFrame) -> None:
        _, manifest = latest(artifacts, "features")
        self.categories = manifest["categories"]
        self.names = manifest["features"]
        self.artifacts = artifacts
        self.lines = lines

    def features(self, customer_id: str, at: pd.Timestamp, extra: pd.DataFrame | None = None):
        lines = self.lines if extra is None else pd.concat([self.lines, extra], ignore_index=True)
        ids, values = feat.compute_customer_features(feat.prepare_lines(lines), at, self.categories)
        row = list(ids).index(customer_id)
        return dict(zip(self.names, values[row].tolist(), strict=True))

    def score(self, model: str, output: str, customer_id: str, at: pd.Timestamp, extra=None):
        version_dir, manifest = latest(self.artifacts, model)
        session = ort.InferenceSession(
            str(version_dir / "model.onnx"), providers=["CPUExecutionProvider"]
        )
        row = self.features(customer_id, at, extra)
        x = np.array([[row[n] for n in manifest["features"]]], dtype=np.float32)
        (out,) = session.run([output], {"features": x})
        return np.asarray(out).reshape(-1)

    def churn(self, customer_id: str, at: pd.Timestamp, extra: pd.DataFrame | None = None):
        return float(self.score("churn", "probability", customer_id, at, extra)[0])


@pytest.fixture(scope="module")
def offline(trained_artifacts: Path, trained_lines: pd.DataFrame) -> Offline:
    return Offline(trained_artifacts, trained_lines)


def _churn(server: RunningServer, customer_id: str, **kw) -> churn_pb2.PredictChurnResponse:
    stub = churn_pb2_grpc.ChurnServiceStub(server.channel)
    request = churn_pb2.PredictChurnRequest(customers=[{"customer_id": customer_id}], **kw)
    return stub.PredictChurn(request, timeout=30)


def _line(customer: str, invoice: str, number: int, when: pd.Timestamp, **kw):
    line = common_pb2.TransactionLine(
        invoice=invoice,
        stock_code=kw.get("stock_code", "85123A"),
        quantity=kw.get("quantity", 4.0),
        price=kw.get("price", 2.55),
        customer_id=customer,
        country="United Kingdom",
        category=kw.get("category", ""),
    )
    line.invoice_date.FromNanoseconds(when.value)
    return transactions_pb2.IngestLine(line=line, line_number=number)


def _frame(lines: list[transactions_pb2.IngestLine], category_of: dict[str, str]) -> pd.DataFrame:
    """Ingested lines as the offline pipeline reads them (category from the stock code, as
    the shipped lines map it)."""
    return pd.DataFrame(
        {
            feat.INVOICE: [x.line.invoice for x in lines],
            feat.STOCK_CODE: [x.line.stock_code for x in lines],
            feat.QUANTITY: [x.line.quantity for x in lines],
            feat.INVOICE_DATE: [pd.Timestamp(x.line.invoice_date.ToNanoseconds()) for x in lines],
            feat.PRICE: [x.line.price for x in lines],
            feat.CUSTOMER_ID: [x.line.customer_id for x in lines],
            feat.CATEGORY: [category_of.get(x.line.stock_code, "other") for x in lines],
        }
    )


def _ingest(server: RunningServer, lines) -> transactions_pb2.IngestTransactionsResponse:
    stub = tx_grpc.TransactionServiceStub(server.channel)
    return stub.IngestTransactions(
        transactions_pb2.IngestTransactionsRequest(lines=lines), timeout=30
    )


def _violations(err: grpc.RpcError) -> dict[str, str]:
    status = status_pb2.Status.FromString(dict(err.trailing_metadata())["grpc-status-details-bin"])
    details = error_details_pb2.BadRequest()
    for any_detail in status.details:
        if any_detail.Unpack(details):
            return {v.field: v.description for v in details.field_violations}
    return {}


def _a_customer(trained_lines: pd.DataFrame) -> tuple[str, str, str]:
    """A customer with several invoices, one of their stock codes and its category."""
    counts = trained_lines.groupby("Customer ID")["Invoice"].nunique()
    cid = str(counts[counts >= 3].index[0])
    mine = trained_lines[trained_lines["Customer ID"].astype(str) == cid].iloc[-1]
    return cid, str(mine["StockCode"]), str(mine["Category"])


def test_by_id_features_age_with_the_clock_and_equal_offline(
    fresh, offline: Offline, trained_lines: pd.DataFrame, as_of: pd.Timestamp
) -> None:
    server, clock = fresh
    cid, _, _ = _a_customer(trained_lines)
    today = _churn(server, cid)
    assert pd.Timestamp(today.as_of.ToNanoseconds()) == as_of
    assert today.predictions[0].probability == pytest.approx(offline.churn(cid, as_of), abs=1e-6)

    clock.set(as_of + 45 * DAY + pd.Timedelta(hours=5))  # 46 days on, mid-day
    later = _churn(server, cid, include_drivers=True)
    aged_as_of = as_of + 46 * DAY
    assert pd.Timestamp(later.as_of.ToNanoseconds()) == aged_as_of
    expected = offline.churn(cid, aged_as_of)
    assert later.predictions[0].probability == pytest.approx(expected, abs=1e-6)
    assert abs(later.predictions[0].probability - today.predictions[0].probability) > 1e-4
    aged, then = offline.features(cid, aged_as_of), offline.features(cid, as_of)
    assert aged["recency_days"] == pytest.approx(then["recency_days"] + 46, abs=1e-3)
    for driver in later.predictions[0].drivers:  # drivers report the aged values
        assert driver.value == pytest.approx(aged[driver.feature], rel=1e-5, abs=1e-4)

    # an explicit as_of answers reproducibly, whatever the clock says
    pinned = as_of + 10 * DAY
    request_as_of = {"as_of": {"seconds": int(pinned.timestamp())}}
    got = _churn(server, cid, **request_as_of)
    assert pd.Timestamp(got.as_of.ToNanoseconds()) == pinned
    assert got.predictions[0].probability == pytest.approx(offline.churn(cid, pinned), abs=1e-6)


def test_spend_and_segments_by_id_take_as_of_too(
    fresh, offline: Offline, trained_lines: pd.DataFrame, as_of: pd.Timestamp
) -> None:
    server, _ = fresh
    cid, _, _ = _a_customer(trained_lines)
    pinned = as_of + 100 * DAY
    stamp = {"seconds": int(pinned.timestamp())}
    customers = [{"customer_id": cid}]
    spend = spend_pb2_grpc.SpendServiceStub(server.channel).PredictSpend(
        spend_pb2.PredictSpendRequest(customers=customers, as_of=stamp), timeout=30
    )
    assert pd.Timestamp(spend.as_of.ToNanoseconds()) == pinned
    expected = offline.score("spend", "spend", cid, pinned)
    assert spend.predictions[0].total == pytest.approx(float(expected[0]), abs=1e-4, rel=1e-5)
    segments = segmentation_pb2_grpc.SegmentationServiceStub(server.channel).AssignSegments(
        segmentation_pb2.AssignSegmentsRequest(customers=customers, as_of=stamp), timeout=30
    )
    assert pd.Timestamp(segments.as_of.ToNanoseconds()) == pinned
    cluster = offline.score("segmentation", "cluster", cid, pinned)
    assert segments.assignments[0].cluster_id == int(cluster[0])
    today = spend_pb2_grpc.SpendServiceStub(server.channel).PredictSpend(
        spend_pb2.PredictSpendRequest(customers=customers), timeout=30
    )
    assert pd.Timestamp(today.as_of.ToNanoseconds()) == as_of


def test_ingested_lines_count_for_known_and_new_customers_and_a_retry_counts_once(
    fresh, offline: Offline, trained_lines: pd.DataFrame, as_of: pd.Timestamp
) -> None:
    server, clock = fresh
    clock.set(as_of + 3 * DAY)
    cid, stock, category = _a_customer(trained_lines)
    before = offline.features(cid, as_of + 4 * DAY)
    with pytest.raises(grpc.RpcError) as unknown:
        _churn(server, "NEW-42")
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    batch = [
        _line(cid, "990001", 1, as_of + 2 * DAY, stock_code=stock),
        _line(cid, "990001", 2, as_of + 2 * DAY, stock_code=stock, quantity=1, price=9.5),
        _line("NEW-42", "990002", 1, as_of + DAY, stock_code=stock, quantity=2),
        _line(cid, "C990003", 1, as_of + 3 * DAY, stock_code=stock, quantity=-1),  # a return
    ]
    first = _ingest(server, batch)
    assert (first.accepted, first.duplicates) == (4, 0)
    assert set(first.customer_ids) == {cid, "NEW-42"}
    assert pd.Timestamp(first.as_of.ToNanoseconds()) == as_of + 4 * DAY

    extra = _frame(batch, {stock: category})
    at = as_of + 4 * DAY
    after = offline.features(cid, at, extra)
    assert after["frequency"] == before["frequency"] + 1  # one new sale invoice
    assert after["return_invoices"] == before["return_invoices"] + 1
    for customer in (cid, "NEW-42"):
        got = _churn(server, customer).predictions[0]
        assert got.probability == pytest.approx(offline.churn(customer, at, extra), abs=1e-6)

    retry = _ingest(server, batch)  # the client never saw the first answer
    assert (retry.accepted, retry.duplicates) == (0, 4)
    again = _churn(server, cid).predictions[0]
    assert again.probability == pytest.approx(offline.churn(cid, at, extra), abs=1e-6)
    stats = churn_pb2_grpc.ChurnServiceStub(server.channel).GetChurnStats(
        churn_pb2.GetChurnStatsRequest(), timeout=10
    )
    assert stats.snapshot.scored == trained_lines["Customer ID"].nunique() + 1


def test_bad_lines_and_key_conflicts_are_refused_naming_the_field(
    fresh, as_of: pd.Timestamp
) -> None:
    server, _ = fresh
    good = _line("K1", "880001", 1, as_of - DAY)
    bad = [
        good,
        _line("K1", "880001", 2, as_of - DAY, price=-1),
        _line("", "880001", 3, as_of - DAY),
        _line("K1", "880001", 0, as_of - DAY),
        _line("K1", "880001", 4, as_of + 30 * DAY),  # after the end of the server's day
        _line("K1", "880001", 5, as_of - DAY, quantity=0),
    ]
    with pytest.raises(grpc.RpcError) as refused:
        _ingest(server, bad)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = _violations(refused.value)
    assert set(violations) == {
        "lines[1].line.price",
        "lines[2].line.customer_id",
        "lines[3].line_number",
        "lines[4].line.invoice_date",
        "lines[5].line.quantity",
    }
    assert violations["lines[1].line.price"] == PRICE_RULE
    assert violations["lines[5].line.quantity"] == QUANTITY_RULE
    # The same lines as a raw history to score: the same rule, in the same words.
    history = common_pb2.TransactionHistory(lines=[bad[1].line, bad[5].line])
    history.as_of.FromNanoseconds(as_of.value)
    with pytest.raises(grpc.RpcError) as scored:
        churn_pb2_grpc.ChurnServiceStub(server.channel).PredictChurn(
            churn_pb2.PredictChurnRequest(customers=[{"transactions": history}]), timeout=10
        )
    assert scored.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _violations(scored.value) == {
        "customers[0].transactions.lines[0].price": PRICE_RULE,
        "customers[0].transactions.lines[1].quantity": QUANTITY_RULE,
    }
    with pytest.raises(grpc.RpcError):  # nothing of the refused batch was stored
        _churn(server, "K1")
    assert _ingest(server, [good]).accepted == 1
    changed = _line("K1", "880001", 1, as_of - DAY, quantity=7)
    with pytest.raises(grpc.RpcError) as conflict:
        _ingest(server, [changed])
    assert conflict.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(_violations(conflict.value)) == {"lines[0].line_number"}


def test_an_ingested_line_that_raises_risk_alerts_an_open_watch(
    fresh, offline: Offline, as_of: pd.Timestamp
) -> None:
    server, _ = fresh
    watch = AlertWatch(server.channel, server.artifacts)
    # a customer new to the server whose only purchase was long ago: risk from nothing to high
    stale = _line("NEW-STALE", "770001", 1, as_of - 300 * DAY)
    assert _ingest(server, [stale]).accepted == 1
    hits = watch.wait_for(lambda a: a.customer_id == "NEW-STALE")
    watch.close()
    alert = hits[0]
    assert alert.reason == "ingested_line"
    assert alert.previous_risk_level == churn_pb2.RISK_LEVEL_UNSPECIFIED
    assert alert.risk_level >= churn_pb2.RISK_LEVEL_MEDIUM
    assert pd.Timestamp(alert.as_of.ToNanoseconds()) == as_of
    assert alert.drivers and alert.model.name == "churn" and alert.model.version >= 1
    extra = _frame([stale], {})
    assert alert.probability == pytest.approx(offline.churn("NEW-STALE", as_of, extra), abs=1e-6)


def test_the_daily_ageing_alerts_customers_whose_risk_rose(
    fresh, offline: Offline, as_of: pd.Timestamp
) -> None:
    server, clock = fresh
    watch = AlertWatch(server.channel, server.artifacts)
    clock.set(as_of + 60 * DAY)  # nobody scores anyone: the refresher ages everyone
    hits = watch.wait_for(lambda a: a.reason == "daily_ageing")
    watch.close()
    aged_as_of = as_of + 61 * DAY
    for alert in hits[:5]:
        assert alert.risk_level > alert.previous_risk_level > 0
        assert pd.Timestamp(alert.as_of.ToNanoseconds()) == aged_as_of
        assert alert.drivers
        assert alert.probability == pytest.approx(
            offline.churn(alert.customer_id, aged_as_of), abs=1e-6
        )


def test_kill_9_after_an_acknowledged_ingestion_loses_nothing(
    fresh, offline: Offline, trained_artifacts: Path, tmp_path: Path, as_of: pd.Timestamp
) -> None:
    server, _ = fresh
    lines = [_line("NEW-DURABLE", "660001", n, as_of - 2 * DAY, quantity=n) for n in (1, 2, 3)]
    assert _ingest(server, lines).accepted == 3
    served = _churn(server, "NEW-DURABLE").predictions[0].probability
    server.proc.kill()  # SIGKILL straight after the acknowledgement
    server.proc.wait(timeout=10)
    again = launch(trained_artifacts, server.data_dir, server.clock_args)  # type: ignore[attr-defined]
    try:
        got = _churn(again, "NEW-DURABLE").predictions[0].probability
        assert got == pytest.approx(served, abs=1e-9)
        assert got == pytest.approx(
            offline.churn("NEW-DURABLE", as_of, _frame(lines, {})), abs=1e-6
        )
        assert _ingest(again, lines).duplicates == 3  # still known: a retry counts once
    finally:
        again.kill()


def test_ingested_lines_export_as_an_online_retail_csv_training_reads(
    fresh, tmp_path: Path, as_of: pd.Timestamp
) -> None:
    from training.loader import load_transactions

    server, _ = fresh
    lines = [
        _line("EXP-1", "440001", 1, as_of - 3 * DAY, quantity=2, price=1.25, category="home"),
        _line("EXP-1", "C440002", 1, as_of - 2 * DAY, quantity=-1, price=1.25, category="home"),
        _line("EXP-2", "440003", 1, as_of - DAY, quantity=5, price=0.85, category="home"),
    ]
    assert _ingest(server, lines).accepted == 3
    out = tmp_path / "ingested.csv"
    done = run_cli("--target", server.target, "transactions", "export", "--out", str(out))
    assert done.returncode == 0, done.stderr
    loaded = load_transactions(out).lines
    assert list(loaded["Invoice"]) == ["440001", "C440002", "440003"]
    assert list(loaded["Customer ID"]) == ["EXP-1", "EXP-1", "EXP-2"]
    assert list(loaded["Quantity"]) == [2, -1, 5]
    assert list(loaded["Price"]) == [1.25, 1.25, 0.85]
    assert [pd.Timestamp(t) for t in loaded["InvoiceDate"]] == [
        as_of - 3 * DAY,
        as_of - 2 * DAY,
        as_of - DAY,
    ]
    later = run_cli(
        "--target", server.target, "transactions", "export", "--out", str(out),
        "--since", "2199-01-01T00:00:00",
    )  # fmt: skip
    assert later.returncode == 0, later.stderr
    assert out.read_text().count("\n") == 1  # the header alone: nothing ingested since then


def _retrained_features(artifacts: Path, into: Path, extra: pd.DataFrame) -> None:
    """`into`: a copy of `artifacts` plus features version N+1 whose history also holds the
    `extra` lines (what a retrain on the exported lines ships)."""
    import json
    import shutil

    from crm.artifacts import MANIFEST_FILE, sha256_file
    from crm.history import HISTORY_FILE, history_arrays, history_frame

    shutil.copytree(artifacts, into)
    old_dir, manifest = latest(into, "features")
    new_dir = old_dir.parent / str(int(old_dir.name) + 1)
    shutil.copytree(old_dir, new_dir)
    with np.load(new_dir / HISTORY_FILE) as data:
        history = history_frame(data)
    merged = pd.concat([history, extra.reindex(columns=history.columns)], ignore_index=True)
    merged[feat.COUNTRY] = merged[feat.COUNTRY].fillna("")
    merged[feat.DESCRIPTION] = merged[feat.DESCRIPTION].fillna("")
    np.savez(new_dir / HISTORY_FILE, **history_arrays(merged))
    manifest["version"] = int(new_dir.name)
    manifest["files"][HISTORY_FILE] = sha256_file(new_dir / HISTORY_FILE)
    (new_dir / MANIFEST_FILE).write_text(json.dumps(manifest))


def test_a_retrained_history_holding_ingested_lines_counts_them_once(
    trained_artifacts: Path, tmp_path: Path, offline: Offline, as_of: pd.Timestamp
) -> None:
    artifacts = tmp_path / "artifacts"
    ingested = [
        _line("NEW-R", "330001", 1, as_of - 4 * DAY, quantity=3),
        _line("NEW-R", "330002", 1, as_of - 2 * DAY, quantity=1),
    ]
    extra = _frame(ingested, {})
    _retrained_features(trained_artifacts, artifacts, extra.iloc[:1])  # a retrain saw line 1
    newest = int(latest(artifacts, "features")[0].name)
    new_dir = latest(artifacts, "features")[0]
    held = tmp_path / "held"
    new_dir.rename(held)  # serve the old version first
    clock = Clock(tmp_path / "clock", as_of - pd.Timedelta(seconds=1))
    server = launch(artifacts, tmp_path / "data", ["--test-clock-file", str(clock.path)])
    try:
        assert _ingest(server, ingested).accepted == 2
        before = _churn(server, "NEW-R").predictions[0].probability
        held.rename(new_dir)  # the retrained version appears; the server loads it
        reply = model_pb2_grpc.ModelServiceStub(server.channel).ReloadModels(
            model_pb2.ReloadModelsRequest(), timeout=60
        )
        assert any(r.name == "features" and r.version == newest for r in reply.results)
        after = _churn(server, "NEW-R").predictions[0].probability
    finally:
        server.kill()
    expected = offline.churn("NEW-R", as_of, extra)  # each line once
    assert before == pytest.approx(expected, abs=1e-6)
    assert after == pytest.approx(expected, abs=1e-6)


def test_a_features_artifact_without_history_serves_its_rows_and_refuses_ingestion(
    trained_artifacts: Path,
    tmp_path: Path,
    as_of: pd.Timestamp,
    trained_lines: pd.DataFrame,
    offline: Offline,
) -> None:
    """Artifacts trained before fresh scores: the rows training wrote, no ingestion, no as_of."""
    import json
    import shutil

    from crm.artifacts import MANIFEST_FILE
    from crm.history import HISTORY_FILE

    artifacts = tmp_path / "artifacts"
    shutil.copytree(trained_artifacts, artifacts)
    version_dir, manifest = latest(artifacts, "features")
    del manifest["files"][HISTORY_FILE]
    (version_dir / MANIFEST_FILE).write_text(json.dumps(manifest))
    (version_dir / HISTORY_FILE).unlink()
    clock = Clock(tmp_path / "clock", as_of + 90 * DAY)  # long after training: nothing ages
    server = launch(artifacts, tmp_path / "data", ["--test-clock-file", str(clock.path)])
    try:
        cid, _, _ = _a_customer(trained_lines)
        got = _churn(server, cid)
        assert pd.Timestamp(got.as_of.ToNanoseconds()) == as_of
        assert got.predictions[0].probability == pytest.approx(offline.churn(cid, as_of), abs=1e-6)
        with pytest.raises(grpc.RpcError) as refused:
            _ingest(server, [_line(cid, "220001", 1, as_of)])
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        with pytest.raises(grpc.RpcError) as pinned:
            _churn(server, cid, as_of={"seconds": int(as_of.timestamp())})
        assert pinned.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        server.kill()


def test_lines_appended_to_the_configured_integrity_log_are_ingested(
    trained_artifacts: Path, tmp_path: Path, offline: Offline, as_of: pd.Timestamp
) -> None:
    clock = Clock(tmp_path / "clock", as_of - pd.Timedelta(seconds=1))
    args = ["--test-clock-file", str(clock.path), "--ingest-integrity-log", "sales"]
    server = launch(trained_artifacts, tmp_path / "data", args)
    try:
        integrity = integrity_pb2_grpc.IntegrityServiceStub(server.channel)
        lines = [x.line for x in (_line("LOGGED-1", "110001", 1, as_of - 3 * DAY),)]
        lines.append(common_pb2.TransactionLine(invoice="110002", stock_code="85123A", quantity=1))
        lines[1].invoice_date.FromNanoseconds((as_of - DAY).value)  # no customer: log only
        other = [x.line for x in (_line("LOGGED-2", "110003", 1, as_of - 3 * DAY),)]
        integrity.AppendTransactions(
            integrity_pb2.AppendTransactionsRequest(log="other", transactions=other), timeout=30
        )
        appended = integrity.AppendTransactions(
            integrity_pb2.AppendTransactionsRequest(log="sales", transactions=lines), timeout=30
        )
        assert appended.tree_head.tree_size == 2  # the log took both lines
        got = _churn(server, "LOGGED-1").predictions[0].probability
        extra = _frame([_line("LOGGED-1", "110001", 1, as_of - 3 * DAY)], {})
        assert got == pytest.approx(offline.churn("LOGGED-1", as_of, extra), abs=1e-6)
        with pytest.raises(grpc.RpcError) as other_log:  # only the configured log feeds
            _churn(server, "LOGGED-2")
        assert other_log.value.code() == grpc.StatusCode.NOT_FOUND
        export = tx_grpc.TransactionServiceStub(server.channel).ExportTransactions(
            transactions_pb2.ExportTransactionsRequest(), timeout=30
        )
        assert [(x.line.invoice, x.line_number) for x in export.lines] == [("110001", 1)]
    finally:
        server.kill()

"""Segmentation, churn and spend through the stubs on a real server with trained artifacts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import grpc
import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients import CrmClient, CrmError
from clients.scoring import History, Line
from crm.v1 import (
    churn_pb2,
    churn_pb2_grpc,
    common_pb2,
    segmentation_pb2,
    segmentation_pb2_grpc,
    spend_pb2,
    spend_pb2_grpc,
)
from tests.helpers import sample, scrape
from tests.serving.helpers import (
    customer_lines,
    features_of,
    latest,
    model_features,
    snapshot,
    snapshot_as_of,
    snapshot_batch,
)


def _by_id(ids: Sequence[str]) -> list[dict[str, str]]:
    return [{"customer_id": c} for c in ids]


def test_health_serving_for_every_scoring_service(served) -> None:
    stub = health_pb2_grpc.HealthStub(served.channel)
    for service in ("crm.v1.SegmentationService", "crm.v1.ChurnService", "crm.v1.SpendService"):
        status = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
        assert status == health_pb2.HealthCheckResponse.SERVING, service


def test_each_input_form_scores_and_names_the_model(served, trained_artifacts: Path) -> None:
    ids, _, _, _ = snapshot(trained_artifacts)
    by_features = features_of(trained_artifacts, "churn", 0)
    with CrmClient(served.target) as client:
        scored = client.predict_churn([ids[0], by_features])
        assert scored.model.name == "churn"
        assert scored.model.version >= 1
        by_id, by_feat = scored.results
        assert by_id.customer_id == ids[0]
        assert by_id.error is None
        assert 0.0 <= by_id.probability <= 1.0
        assert by_id.risk_level in {"LOW", "MEDIUM", "HIGH", "CRITICAL"}
        assert by_id.recommendations
        assert by_feat.probability == pytest.approx(by_id.probability, abs=1e-6)
        spend = client.predict_spend([ids[0]])
        assert spend.model.name == "spend"
        assert spend.currency
        assert spend.horizon_days == 30
        (s,) = spend.results
        assert s.total >= 0
        assert sum(s.categories.values()) == pytest.approx(s.total, rel=1e-4, abs=1e-3)
        segments = client.assign_segments([ids[0], ids[1]])
        assert segments.model.name == "segmentation"
        for a in segments.results:
            assert a.segment in {"VIP", "Loyal", "Regular", "New", "At-Risk", "Lost"}
            assert all(1 <= s <= 5 for s in (a.recency_score, a.frequency_score, a.monetary_score))
            assert a.recommended_action


def test_drivers_are_the_top_mean_occlusion_effects(served, trained_artifacts: Path) -> None:
    """include_drivers: per customer the (up to) three features whose replacement by the
    snapshot mean moves the log-odds most, checked against onnxruntime run here."""
    ids, values, snapshot_names, _ = snapshot(trained_artifacts)
    names = model_features(trained_artifacts, "churn")
    version_dir, _ = latest(trained_artifacts, "churn")
    session = ort.InferenceSession(str(version_dir / "model.onnx"))
    columns = [snapshot_names.index(n) for n in names]
    means = values[:, columns].mean(axis=0).astype(np.float32)

    def logit(rows: np.ndarray) -> np.ndarray:
        p = session.run(["probability"], {"features": rows.astype(np.float32)})[0]
        p = np.clip(p.astype(np.float64), 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p))

    with CrmClient(served.target) as client:
        scored = client.predict_churn([ids[3], ids[4]], include_drivers=True)
        plain = client.predict_churn([ids[3]])
    assert plain.results[0].drivers == ()
    for cid, result in zip([ids[3], ids[4]], scored.results, strict=True):
        row = values[list(ids).index(cid), columns].astype(np.float32)
        occluded = np.repeat(row[None, :], len(names), axis=0)
        occluded[np.arange(len(names)), np.arange(len(names))] = means
        effect = logit(row[None, :])[0] - logit(occluded)
        top = [names[j] for j in np.argsort(-np.abs(effect), kind="stable")[:3]]
        assert 1 <= len(result.drivers) <= 3
        assert [d.feature for d in result.drivers] == top[: len(result.drivers)]
        for d in result.drivers:
            j = names.index(d.feature)
            assert d.value == pytest.approx(float(row[j]), rel=1e-6)
            assert d.contribution == pytest.approx(effect[j], abs=1e-4)


def test_transaction_lines_give_the_snapshot_features(
    served, trained_artifacts: Path, trained_lines: pd.DataFrame
) -> None:
    """Same customer by raw lines and by id: the same probability (one feature module).
    The lines are the customer's own, from the data the snapshot was computed on, sent with
    the snapshot's as-of time; a line after that time changes nothing."""
    ids, _, _, manifest = snapshot(trained_artifacts)
    as_of = snapshot_as_of(manifest)
    chosen = [str(ids[i]) for i in np.linspace(0, len(ids) - 1, 5).astype(int)]
    histories = [customer_lines(trained_lines, cid) for cid in chosen]
    assert all(histories), "a snapshot customer without lines"
    later = Line(
        "999999", "A3", 3, 7.25, as_of + timedelta(days=1), customer_id=chosen[0], category="home"
    )
    with CrmClient(served.target) as client:
        by_id = client.predict_churn(chosen).results
        by_lines = client.predict_churn([History(lines, as_of) for lines in histories]).results
        (with_future,) = client.predict_churn([History([*histories[0], later], as_of)]).results
    assert [r.error for r in [*by_id, *by_lines, with_future]] == [None] * (2 * len(chosen) + 1)
    np.testing.assert_allclose(
        [r.probability for r in by_lines], [r.probability for r in by_id], atol=1e-6, rtol=0
    )
    assert len({round(r.probability, 6) for r in by_id}) > 1, "the customers cannot be told apart"
    assert with_future.probability == pytest.approx(by_lines[0].probability, abs=1e-9)


@pytest.mark.parametrize("kind", ["churn", "spend", "segments"])
def test_batch_marks_unknown_ids_and_single_unknown_is_not_found(
    served, trained_artifacts, kind: str
) -> None:
    ids, _, _, _ = snapshot(trained_artifacts)
    with CrmClient(served.target) as client:
        call = {
            "churn": client.predict_churn,
            "spend": client.predict_spend,
            "segments": client.assign_segments,
        }[kind]
        results = call([ids[0], "no-such-customer", ids[1]]).results
        assert [r.index for r in results] == [0, 1, 2]
        assert [r.customer_id for r in results] == [ids[0], "no-such-customer", ids[1]]
        assert results[0].error is None and results[2].error is None
        assert results[1].error.code == "NOT_FOUND"
        assert results[1].error.field == "customers[1].customer_id"
        alone = [call([ids[0]]).results[0], call([ids[1]]).results[0]]
        assert [_scores(r) for r in (results[0], results[2])] == [_scores(r) for r in alone]
        with pytest.raises(CrmError) as err:
            call(["no-such-customer"])
        assert err.value.code == grpc.StatusCode.NOT_FOUND


def _scores(result: object) -> tuple[object, ...]:
    """What a row's scores are, whichever service answered it."""
    fields = ("probability", "risk_level", "recommendations", "total", "categories", "segment",
              "cluster_id", "recency_score", "frequency_score", "monetary_score")  # fmt: skip
    return tuple(getattr(result, f, None) for f in fields)


def _violations(call, request) -> tuple[grpc.StatusCode, list[str]]:
    with pytest.raises(grpc.RpcError) as err:
        call(request, timeout=10)
    decoded = CrmError.from_rpc_error(err.value)
    return decoded.code, [v.field for v in decoded.violations]


def test_bad_inputs_name_their_fields(served, trained_artifacts: Path) -> None:
    stub = churn_pb2_grpc.ChurnServiceStub(served.channel)
    good = features_of(trained_artifacts, "churn", 0)
    first = next(iter(good))
    count_feature = "frequency"
    missing = dict(good)
    del missing[first]
    cases = [
        ([{"features": {"values": missing}}], f"customers[0].features.{first}"),
        ([{"features": {"values": {**good, "bogus": 1.0}}}], "customers[0].features.bogus"),
        # as many values as the model has features, one name wrong: both problems named
        ([{"features": {"values": {**missing, "bogus": 1.0}}}], f"customers[0].features.{first}"),
        ([{"features": {"values": {**missing, "bogus": 1.0}}}], "customers[0].features.bogus"),
        ([{"customer_id": "x"}, {"features": {"values": {**good, count_feature: float("nan")}}}],
         f"customers[1].features.{count_feature}"),
        ([{"features": {"values": {**good, count_feature: float("inf")}}}],
         f"customers[0].features.{count_feature}"),
        ([{"features": {"values": {**good, count_feature: -1.0}}}],
         f"customers[0].features.{count_feature}"),
        ([{"customer_id": " "}], "customers[0].customer_id"),
        ([{}], "customers[0]"),
        ([{"transactions": {"lines": [{"invoice": "1", "quantity": 1, "price": 1}]}}],
         "customers[0].transactions.as_of"),
        ([], "customers"),
    ]  # fmt: skip
    for customers, field in cases:
        code, fields = _violations(
            stub.PredictChurn, churn_pb2.PredictChurnRequest(customers=customers)
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT, field
        assert field in fields, (field, fields)
    names = list(good)
    values = [good[n] for n in names]
    batch_cases = [
        (common_pb2.FeatureMatrix(feature_names=names[:-1], values=values[:-1]), "batch.feature_names"),
        (common_pb2.FeatureMatrix(feature_names=names, values=[*values, 1.0]), "batch.values"),
        (common_pb2.FeatureMatrix(
            feature_names=names, values=values + [float("nan") if n == count_feature else v for n, v in zip(names, values, strict=True)]),
         f"batch.values[1].{count_feature}"),
        (common_pb2.FeatureMatrix(feature_names=names, values=values, row_keys=["a", "b"]), "batch.row_keys"),
    ]  # fmt: skip
    for batch, field in batch_cases:
        code, fields = _violations(stub.PredictChurn, churn_pb2.PredictChurnRequest(batch=batch))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, field
        assert field in fields, (field, fields)
    code, fields = _violations(
        stub.PredictChurn,
        churn_pb2.PredictChurnRequest(customers=[{"customer_id": "x"}], model_version=-1),
    )
    assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["model_version"])
    too_many = churn_pb2.PredictChurnRequest(customers=[{"customer_id": "x"}] * 60_001)
    code, fields = _violations(stub.PredictChurn, too_many)
    assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["customers"])
    alerts = stub.WatchChurnAlerts(churn_pb2.WatchChurnAlertsRequest(min_probability=2), timeout=5)
    with pytest.raises(grpc.RpcError) as err:
        next(alerts)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in CrmError.from_rpc_error(err.value).violations] == ["min_probability"]
    assert "Traceback" not in served.logs()


def test_columnar_batch_equals_per_customer(served, trained_artifacts: Path) -> None:
    ids, values, names, _ = snapshot(trained_artifacts)
    churn_names = model_features(trained_artifacts, "churn")
    cols = [names.index(n) for n in churn_names]
    rows = values[:50][:, cols]
    shuffled = list(reversed(churn_names))  # any column order is accepted
    matrix = rows[:, [churn_names.index(n) for n in shuffled]]
    stub = churn_pb2_grpc.ChurnServiceStub(served.channel)
    columnar = stub.PredictChurn(
        churn_pb2.PredictChurnRequest(
            batch=common_pb2.FeatureMatrix(
                feature_names=shuffled,
                values=matrix.reshape(-1).tolist(),
                row_keys=ids[:50].tolist(),
            )
        ),
        timeout=10,
    )
    per_customer = stub.PredictChurn(
        churn_pb2.PredictChurnRequest(customers=_by_id(ids[:50])), timeout=10
    )
    assert not columnar.predictions
    np.testing.assert_allclose(
        columnar.columns.probabilities,
        [p.probability for p in per_customer.predictions],
        atol=1e-6,
    )
    assert list(columnar.columns.risk_levels) == [p.risk_level for p in per_customer.predictions]
    spend_stub = spend_pb2_grpc.SpendServiceStub(served.channel)
    col_spend = spend_stub.PredictSpend(
        spend_pb2.PredictSpendRequest(batch=snapshot_batch(trained_artifacts, "spend", 20)),
        timeout=10,
    )
    row_spend = spend_stub.PredictSpend(
        spend_pb2.PredictSpendRequest(customers=_by_id(ids[:20])), timeout=10
    )
    np.testing.assert_allclose(
        col_spend.columns.totals, [p.total for p in row_spend.predictions], rtol=1e-5, atol=1e-3
    )
    segment_stub = segmentation_pb2_grpc.SegmentationServiceStub(served.channel)
    col_seg = segment_stub.AssignSegments(
        segmentation_pb2.AssignSegmentsRequest(
            batch=snapshot_batch(trained_artifacts, "segmentation", 30)
        ),
        timeout=10,
    )
    row_seg = segment_stub.AssignSegments(
        segmentation_pb2.AssignSegmentsRequest(customers=_by_id(ids[:30])), timeout=10
    )
    assert not col_seg.assignments
    c = col_seg.columns
    rows_seen = list(
        zip(c.segments, c.cluster_ids, c.recency_scores, c.frequency_scores, c.monetary_scores, strict=True)
    )  # fmt: skip
    assert rows_seen == [
        (a.segment, a.cluster_id, a.recency_score, a.frequency_score, a.monetary_score)
        for a in row_seg.assignments
    ]
    legend = {entry.cluster_id: entry for entry in c.legend}
    for a in row_seg.assignments:
        entry = legend[a.cluster_id]
        assert (entry.segment, entry.segment_name, entry.recommended_action) == (
            a.segment, a.segment_name, a.recommended_action,
        )  # fmt: skip


def test_summaries_over_thesnapshot(served, trained_artifacts: Path) -> None:
    ids, _, _, _ = snapshot(trained_artifacts)
    names = {"VIP", "Loyal", "Regular", "New", "At-Risk", "Lost"}
    with CrmClient(served.target) as client:
        summary = client.scoring.segment_summary()
        assert summary.model.name == "segmentation"
        assert summary.total_customers == len(ids)
        assert sum(s.customers for s in summary.segments) == len(ids)
        assert sum(s.share for s in summary.segments) == pytest.approx(1.0)
        assert {s.segment for s in summary.segments} <= names
        assert all(s.recommended_action for s in summary.segments)
        before = client.scoring.churn_stats().live.scored
        client.predict_churn(list(ids[:7]))
        stats = client.scoring.churn_stats()
        assert stats.model.name == "churn"
        assert stats.live.scored == before + 7
        assert stats.snapshot.scored == len(ids)
        assert sum(stats.snapshot.by_risk_level.values()) == len(ids)
        assert set(stats.snapshot.by_risk_level) == {"LOW", "MEDIUM", "HIGH", "CRITICAL"}
        assert sum(count for _, count in stats.snapshot.distribution) == len(ids)
        assert list(stats.risk_thresholds) == sorted(stats.risk_thresholds)


def test_client_alerts_and_revenue_are_plain_objects(served, trained_artifacts: Path) -> None:
    import threading
    from datetime import UTC, datetime

    ids, _, _, _ = snapshot(trained_artifacts)
    with CrmClient(served.target) as client:
        alerts = client.scoring.watch_churn_alerts(min_risk_level="LOW", timeout=20)
        got: list = []
        reader = threading.Thread(target=lambda: got.append(next(alerts)))
        reader.start()
        while reader.is_alive():  # keep scoring until the subscription has seen one
            client.predict_churn([ids[0]])
            reader.join(0.1)
        (alert,) = got
        assert alert.customer_id == ids[0]
        assert alert.risk_level in {"LOW", "MEDIUM", "HIGH", "CRITICAL"}
        assert alert.model.name == "churn"
        assert alert.dropped_total == 0
        alerts.close()
        when = datetime(2024, 6, 1, 10, tzinfo=UTC)
        revenue = client.predict_invoice_revenue(
            [Line("1", "A", 2, 5.0, when, category="home"), Line("1", "B", 1, 3.0, when)]
        )
        assert revenue.model.name == "revenue"
        assert [x.gross_revenue for x in revenue.lines] == [10.0, 3.0]
        assert revenue.total_expected_net_revenue == pytest.approx(
            sum(x.expected_net_revenue for x in revenue.lines)
        )


def test_invoice_revenue_and_its_bad_inputs(served) -> None:
    from google.protobuf import timestamp_pb2

    stub = spend_pb2_grpc.SpendServiceStub(served.channel)
    when = timestamp_pb2.Timestamp(seconds=1_718_000_000)
    lines = [
        common_pb2.TransactionLine(invoice="9001", stock_code="X1", quantity=3, price=12.5,
                                   invoice_date=when, category="electronics"),
        common_pb2.TransactionLine(invoice="9001", stock_code="X2", quantity=1, price=4.0,
                                   invoice_date=when, category="grocery"),
    ]  # fmt: skip
    response = stub.PredictInvoiceRevenue(
        spend_pb2.PredictInvoiceRevenueRequest(lines=lines), timeout=10
    )
    assert response.model.name == "revenue"
    assert response.currency
    assert [line.gross_revenue for line in response.lines] == [37.5, 4.0]
    for line in response.lines:
        assert 0 < line.expected_net_revenue <= line.gross_revenue * 1.5
    assert response.total_expected_net_revenue == pytest.approx(
        sum(line.expected_net_revenue for line in response.lines)
    )
    bad = [
        common_pb2.TransactionLine(invoice="1", quantity=-2, price=1, invoice_date=when),
        common_pb2.TransactionLine(invoice="1", quantity=1, price=float("nan"), invoice_date=when),
        common_pb2.TransactionLine(invoice="1", quantity=1, price=1),
    ]
    code, fields = _violations(
        stub.PredictInvoiceRevenue, spend_pb2.PredictInvoiceRevenueRequest(lines=bad)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields == ["lines[0].quantity", "lines[1].price", "lines[2].invoice_date"]
    code, fields = _violations(stub.PredictInvoiceRevenue, spend_pb2.PredictInvoiceRevenueRequest())
    assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["lines"])


def test_calls_by_id_use_the_scores_precomputed_over_thesnapshot(
    served, trained_artifacts: Path
) -> None:
    """By id: no model run, and the same numbers a model run gives for those feature rows."""
    ids, _, _, _ = snapshot(trained_artifacts)

    def counts() -> tuple[float, float]:
        samples = scrape(served.metrics_url)
        return (
            sample(samples, "crm_model_rows_precomputed_total", model="churn"),
            sample(samples, "crm_model_rows_scored_total", model="churn"),
        )

    features = [features_of(trained_artifacts, "churn", row) for row in (3, 4, 5)]
    with CrmClient(served.target) as client:
        before = counts()
        by_id = client.predict_churn([ids[3], ids[4], ids[5]]).results
        after_ids = counts()
        by_features = client.predict_churn(features).results
        mixed = client.predict_churn([ids[3], features[1]]).results
        after_mixed = counts()
    assert after_ids[0] - before[0] == 3  # answered from the precomputed outputs...
    assert after_ids[1] == before[1]  # ...without a model run
    assert after_mixed[0] == after_ids[0]  # features, or ids mixed with features: model runs
    assert after_mixed[1] - after_ids[1] == 3 + 2
    for a, b in zip(by_id, by_features, strict=True):
        assert a.probability == pytest.approx(b.probability, abs=1e-6)
    assert [m.probability for m in mixed] == pytest.approx(
        [by_id[0].probability, by_id[1].probability], abs=1e-6
    )

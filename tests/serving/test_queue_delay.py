"""--batch-queue-delay-us on a real server: a call the server handles alone never waits for
company, however long the delay, even with alert streams open and after failed calls."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from crm.v1 import churn_pb2, churn_pb2_grpc, common_pb2
from tests.server.test_core import sample, scrape
from tests.serverproc import launch
from tests.serving.test_scoring import _features_of

DELAY_US = 5_000_000  # a call that waited it out would miss its 2 s deadline


def test_a_lone_call_never_waits_out_the_queue_delay(
    trained_artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    server = launch(
        trained_artifacts,
        tmp_path_factory.mktemp("data"),
        ["--batch-queue-delay-us", str(DELAY_US), "--batch-preferred-rows", "64"],
    )
    try:
        stub = churn_pb2_grpc.ChurnServiceStub(server.channel)
        # Open streams are not calls in flight: an alert watcher stays open for hours.
        watch = stub.WatchChurnAlerts(churn_pb2.WatchChurnAlertsRequest(), timeout=60)
        features = common_pb2.FeatureValues(values=_features_of(trained_artifacts, "churn", 0))
        good = churn_pb2.PredictChurnRequest(
            customers=[common_pb2.CustomerInput(features=features)]
        )
        bad = churn_pb2.PredictChurnRequest(model_version=-1)
        for _ in range(3):
            reply = stub.PredictChurn(good, timeout=2.0)  # DEADLINE_EXCEEDED if it waited
            (prediction,) = reply.predictions
            assert not prediction.HasField("error")
            assert reply.model.name == "churn"
            with pytest.raises(grpc.RpcError) as failed:  # a failed call leaves the count too
                stub.PredictChurn(bad, timeout=2.0)
            assert failed.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        labels = {"model": "churn"}
        samples = scrape(server.metrics_url)
        assert sample(samples, "crm_batch_rows_count", **labels) == 3
        assert sample(samples, "crm_batch_queue_wait_seconds_sum", **labels) < 0.5
        watch.cancel()
    finally:
        server.kill()

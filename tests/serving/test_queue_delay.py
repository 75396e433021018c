"""--batch-queue-delay-us on a real server: a call the server handles alone never waits for
company, however long the delay, even with alert streams open, after failed calls, or while a
call that reaches no model is in flight.

The calls hold TREES_FROM_ROWS customers: a smaller call to the churn model runs in C at once
and never reaches the batcher (server.models.runtime), so it could not show a wait."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest

from crm.v1 import churn_pb2, churn_pb2_grpc, common_pb2, integrity_pb2, integrity_pb2_grpc
from server.models.runtime import TREES_FROM_ROWS
from tests.helpers import sample, scrape
from tests.serverproc import launch
from tests.serving.helpers import features_of

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
        features = common_pb2.FeatureValues(values=features_of(trained_artifacts, "churn", 0))
        good = churn_pb2.PredictChurnRequest(
            customers=[common_pb2.CustomerInput(features=features)] * TREES_FROM_ROWS
        )
        bad = churn_pb2.PredictChurnRequest(model_version=-1)
        labels = {"model": "churn"}
        # the snapshot's precompute ran through the executor too
        batches = sample(scrape(server.metrics_url), "crm_batch_rows_count", **labels)
        for _ in range(3):
            reply = stub.PredictChurn(good, timeout=2.0)  # DEADLINE_EXCEEDED if it waited
            assert len(reply.predictions) == TREES_FROM_ROWS
            assert not any(p.HasField("error") for p in reply.predictions)
            assert reply.model.name == "churn"
            with pytest.raises(grpc.RpcError) as failed:  # a failed call leaves the count too
                stub.PredictChurn(bad, timeout=2.0)
            assert failed.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        samples = scrape(server.metrics_url)
        assert sample(samples, "crm_batch_rows_count", **labels) == batches + 3
        assert sample(samples, "crm_batch_queue_wait_seconds_sum", **labels) < 0.5
        watch.cancel()
    finally:
        server.kill()


APPEND_LEAVES = 200_000  # ~2 s of appending here: the churn calls run while it is in flight


def test_a_call_that_reaches_no_model_is_no_company(
    trained_artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """An integrity append in flight never joins a batch: a lone PredictChurn meanwhile runs
    at once instead of waiting out the delay for it (and missing its 2 s deadline)."""
    server = launch(
        trained_artifacts,
        tmp_path_factory.mktemp("data"),
        [
            "--batch-queue-delay-us", str(DELAY_US),
            "--batch-preferred-rows", "64",
            "--max-request-rows", str(APPEND_LEAVES),
        ],
    )  # fmt: skip
    try:
        leaves = [b"leaf-%d" % i for i in range(APPEND_LEAVES)]
        append = integrity_pb2_grpc.IntegrityServiceStub(server.channel).AppendLeaves.future(
            integrity_pb2.AppendLeavesRequest(log="busy", leaves=leaves), timeout=120
        )
        started = {"grpc_method": "AppendLeaves"}
        deadline = time.monotonic() + 30
        while sample(scrape(server.metrics_url), "grpc_server_started_total", **started) < 1:
            assert time.monotonic() < deadline, "the append never reached its handler"
            time.sleep(0.01)
        stub = churn_pb2_grpc.ChurnServiceStub(server.channel)
        batches = sample(scrape(server.metrics_url), "crm_batch_rows_count", model="churn")
        features = common_pb2.FeatureValues(values=features_of(trained_artifacts, "churn", 0))
        request = churn_pb2.PredictChurnRequest(
            customers=[common_pb2.CustomerInput(features=features)] * TREES_FROM_ROWS
        )
        for _ in range(3):
            predictions = stub.PredictChurn(request, timeout=2.0).predictions
            assert len(predictions) == TREES_FROM_ROWS
            assert not any(p.HasField("error") for p in predictions)
        assert not append.done(), "the append ended before the churn calls: make it longer"
        assert append.result().tree_head.tree_size == APPEND_LEAVES
        samples = scrape(server.metrics_url)
        assert sample(samples, "crm_batch_rows_count", model="churn") == batches + 3
        assert sample(samples, "crm_batch_queue_wait_seconds_sum", model="churn") < 0.5
    finally:
        server.kill()

"""A default version pinned through one replica is served by the others sharing PostgreSQL
(each reads the pins on its reload tick), clearing it reaches them the same way, and tenants'
pins in the shared table stay apart."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from crm.v1 import churn_pb2, churn_pb2_grpc, common_pb2, model_pb2, model_pb2_grpc
from server.postgres.defaults import PgDefaultStore
from tests.factories import rescaled_version
from tests.fleet.conftest import StartFleet
from tests.serverproc import RunningServer
from tests.serving.helpers import features_of

TICK = "0.2"  # --reload-interval-seconds of the replicas
CONVERGE_S = 30.0


def _default(replica: RunningServer) -> tuple[int, int]:
    stub = model_pb2_grpc.ModelServiceStub(replica.channel)
    models = stub.ListModels(model_pb2.ListModelsRequest(), timeout=10).models
    churn = next(m for m in models if m.name == "churn")
    return churn.default_version, churn.default_source


def _until(what: str, done: Callable[[], bool]) -> None:
    """Ask the replica again until `done` (its next reload tick is the event; it has no
    signal a client could wait on)."""
    deadline = time.monotonic() + CONVERGE_S
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_a_pin_set_on_one_replica_is_served_by_the_other(
    start_fleet: StartFleet, trained_artifacts: Path, tmp_path: Path
) -> None:
    artifacts = tmp_path / "artifacts"
    shutil.copytree(trained_artifacts, artifacts)
    first, second = start_fleet(2, ("--reload-interval-seconds", TICK), artifacts)
    rescaled_version(artifacts / "churn" / "1", 0.5)
    for replica in (first, second):
        _until("a replica did not load version 2", lambda r=replica: _default(r)[0] == 2)
    row = features_of(artifacts, "churn", 0)

    def scored_by(replica: RunningServer) -> int:
        customer = common_pb2.CustomerInput(features=common_pb2.FeatureValues(values=row))
        stub = churn_pb2_grpc.ChurnServiceStub(replica.channel)
        request = churn_pb2.PredictChurnRequest(customers=[customer])
        return stub.PredictChurn(request, timeout=10).model.version

    models = model_pb2_grpc.ModelServiceStub(first.channel)
    pin = model_pb2.SetDefaultVersionRequest(name="churn", version=1)
    assert models.SetDefaultVersion(pin, timeout=30).info.default_version == 1
    assert scored_by(first) == 1
    pinned = (1, model_pb2.DEFAULT_SOURCE_PINNED)
    _until("the other replica did not take up the pin", lambda: _default(second) == pinned)
    assert scored_by(second) == 1

    clear = model_pb2.ClearDefaultVersionRequest(name="churn")
    assert models.ClearDefaultVersion(clear, timeout=30).info.default_version == 2
    newest = (2, model_pb2.DEFAULT_SOURCE_NEWEST)
    _until("the other replica kept a cleared pin", lambda: _default(second) == newest)
    assert scored_by(second) == 2


def test_tenants_pins_stay_apart_in_the_shared_table(pg_url: str) -> None:
    first, second = PgDefaultStore(pg_url, "tenant-a"), PgDefaultStore(pg_url, "tenant-b")
    try:
        first.set("churn", 3)
        first.set("churn", 4)  # a second pin replaces the first
        second.set("spend", 1)
        assert first.all() == {"churn": 4}
        assert second.all() == {"spend": 1}
        second.clear("churn")  # another tenant's model: nothing to clear
        assert first.all() == {"churn": 4}
        first.clear("churn")
        assert first.all() == {}
        assert second.all() == {"spend": 1}
    finally:
        first.close()
        second.close()

"""The server core through the generated stubs: health, reflection, metrics, models, errors."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import numpy as np
import onnxruntime as ort
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from clients import CrmClient, CrmError
from crm.v1 import churn_pb2, churn_pb2_grpc, model_pb2, model_pb2_grpc
from server.transport.health import SERVICE_MODELS
from tests.factories import corrupt, make_onnx_artifact
from tests.helpers import sample, scrape

CRM_SERVICES = {
    "crm.v1.SegmentationService",
    "crm.v1.ChurnService",
    "crm.v1.SpendService",
    "crm.v1.IntegrityService",
    "crm.v1.CampaignService",
    "crm.v1.ModelService",
    "crm.v1.TransactionService",
}


@pytest.fixture
def churn_artifacts(tmp_path: Path) -> Path:
    make_onnx_artifact(tmp_path, "churn")
    return tmp_path


def test_health_per_service_follows_loaded_models(start_server, churn_artifacts: Path) -> None:
    server = start_server(churn_artifacts)
    stub = health_pb2_grpc.HealthStub(server.channel)

    def status(service: str) -> int:
        return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status

    assert status("") == health_pb2.HealthCheckResponse.SERVING
    assert status("crm.v1.ChurnService") == health_pb2.HealthCheckResponse.SERVING
    assert status("crm.v1.ModelService") == health_pb2.HealthCheckResponse.SERVING
    assert status("crm.v1.IntegrityService") == health_pb2.HealthCheckResponse.SERVING
    # TransactionService needs the features artifact (the history lines are added to)
    for service in (
        "crm.v1.SegmentationService", "crm.v1.SpendService", "crm.v1.TransactionService"
    ):  # fmt: skip
        assert status(service) == health_pb2.HealthCheckResponse.NOT_SERVING, service
    with pytest.raises(grpc.RpcError) as err:
        status("crm.v1.NoSuchService")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert set(SERVICE_MODELS) == CRM_SERVICES


def test_reflection_lists_every_service_on_v1_and_v1alpha(start_server) -> None:
    server = start_server()
    stub = reflection_pb2_grpc.ServerReflectionStub(server.channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    (response,) = list(stub.ServerReflectionInfo(iter([request]), timeout=5))
    names = {s.name for s in response.list_services_response.service}
    assert CRM_SERVICES | {"grpc.health.v1.Health"} <= names
    # v1 answers on its own path with wire-identical messages.
    v1 = server.channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    (response,) = list(v1(iter([request]), timeout=5))
    assert {s.name for s in response.list_services_response.service} >= CRM_SERVICES
    # and can describe a service's file
    file_request = reflection_pb2.ServerReflectionRequest(
        file_containing_symbol="crm.v1.ChurnService"
    )
    (response,) = list(v1(iter([file_request]), timeout=5))
    assert response.file_descriptor_response.file_descriptor_proto


def test_metrics_count_calls_by_code(start_server, churn_artifacts: Path) -> None:
    server = start_server(churn_artifacts)
    stub = model_pb2_grpc.ModelServiceStub(server.channel)
    for _ in range(3):
        stub.ListModels(model_pb2.ListModelsRequest(), timeout=5)
    with pytest.raises(grpc.RpcError):
        stub.GetModelMetadata(model_pb2.GetModelMetadataRequest(name="nope"), timeout=5)
    samples = scrape(server.metrics_url)
    labels = {"grpc_service": "crm.v1.ModelService", "grpc_type": "unary"}
    assert (
        sample(
            samples, "grpc_server_handled_total", grpc_method="ListModels", grpc_code="OK", **labels
        )
        == 3
    )
    assert sample(samples, "grpc_server_started_total", grpc_method="ListModels", **labels) == 3
    assert (
        sample(samples, "grpc_server_msg_received_total", grpc_method="ListModels", **labels) == 3
    )
    assert sample(samples, "grpc_server_msg_sent_total", grpc_method="ListModels", **labels) == 3
    assert (
        sample(samples, "grpc_server_handling_seconds_count", grpc_method="ListModels", **labels)
        == 3
    )
    assert (
        sample(
            samples,
            "grpc_server_handled_total",
            grpc_method="GetModelMetadata",
            grpc_code="NOT_FOUND",
            **labels,
        )
        == 1
    )
    assert sample(samples, "crm_model_info", model="churn", version="1", serving="true") == 1
    # The smoke inference at load time already ran the model once.
    assert sample(samples, "crm_model_rows_scored_total", model="churn", version="1") >= 1


def test_model_service_lists_and_describes(start_server, churn_artifacts: Path) -> None:
    server = start_server(churn_artifacts)
    with CrmClient(server.target) as client:
        (model,) = client.list_models()
        assert (model.name, model.version, model.loaded_versions) == ("churn", 1, (1,))
        assert model.feature_names == ("f0", "f1", "f2", "f3")
        meta = client.model_metadata("churn")
        on_disk = (churn_artifacts / "churn" / "1" / "manifest.json").read_text()
        assert meta.manifest["onnx_sha256"] == model.onnx_sha256
        assert meta.manifest["onnx_sha256"] in on_disk
        assert meta.manifest["metrics"]["baseline"]["roc_auc"] == 0.5
        with pytest.raises(CrmError) as err:
            client.model_metadata("churn", version=9)
        assert err.value.code == grpc.StatusCode.NOT_FOUND


def test_bad_inputs_get_invalid_argument_naming_the_field(start_server) -> None:
    server = start_server()
    with CrmClient(server.target) as client:
        for kwargs, field in (
            ({"name": ""}, "name"),
            ({"name": "churn", "version": -1}, "version"),
        ):
            with pytest.raises(CrmError) as err:
                client.model_metadata(**kwargs)
            assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
            assert [v.field for v in err.value.violations] == [field]
        with pytest.raises(CrmError) as err:
            client.model_metadata("unknown-model")
        assert err.value.code == grpc.StatusCode.NOT_FOUND


def test_service_without_its_model_is_unavailable(start_server) -> None:
    server = start_server()
    stub = churn_pb2_grpc.ChurnServiceStub(server.channel)
    request = churn_pb2.PredictChurnRequest(customers=[{"customer_id": "1"}])
    with pytest.raises(grpc.RpcError) as err:
        stub.PredictChurn(request, timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "churn" in err.value.details()


def test_unknown_method_is_unimplemented(start_server) -> None:
    server = start_server()
    call = server.channel.unary_unary("/crm.v1.ChurnService/NoSuchMethod")
    with pytest.raises(grpc.RpcError) as err:
        call(b"", timeout=5)
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "Traceback" not in server.logs()


def _probability(version_dir: Path, features: dict[str, float]) -> float:
    """Churn probability of `features` by the model in `version_dir`, run here."""
    session = ort.InferenceSession(str(version_dir / "model.onnx"))
    row = np.array([[features[f"f{i}"] for i in range(len(features))]], dtype=np.float32)
    return float(session.run(["probability"], {"features": row})[0][0, 0])


def test_hot_reload_swaps_good_and_refuses_corrupt_while_scoring(
    start_server, tmp_path: Path
) -> None:
    """Clients keep calling PredictChurn while a new version is written and reloaded: every
    call succeeds, each client's answers go from version 1 to 2 and never back, and each
    answer is the probability of the version it names. A corrupt version 3 is refused
    without a failed call."""
    v1 = make_onnx_artifact(tmp_path, "churn", probability_output=True)
    server = start_server(tmp_path)
    client = CrmClient(server.target)
    features = {"f0": 0.5, "f1": 0.1, "f2": 1.0, "f3": 2.0}
    n_clients = 4
    answers: list[list[tuple[int, float]]] = [[] for _ in range(n_clients)]
    failures: list[BaseException] = []
    progress = threading.Condition()  # notified after every answer or failure
    stop = threading.Event()

    # The bare stub on a channel without a retry policy: a failed call is not retried away.
    stub = churn_pb2_grpc.ChurnServiceStub(server.channel)
    request = churn_pb2.PredictChurnRequest(customers=[{"features": {"values": features}}])

    def score(mine: list[tuple[int, float]]) -> None:
        while not stop.is_set():
            try:
                reply = stub.PredictChurn(request, timeout=10)
                answer = (reply.model.version, reply.predictions[0].probability)
            except BaseException as exc:  # any failure fails the test
                with progress:
                    failures.append(exc)
                    progress.notify_all()
                return
            with progress:
                mine.append(answer)
                progress.notify_all()

    def wait_until(what: str, done: Callable[[], bool]) -> None:
        with progress:
            assert progress.wait_for(lambda: failures or done(), timeout=30), what
        assert not failures, failures[:3]

    scorers = [threading.Thread(target=score, args=(mine,)) for mine in answers]
    for thread in scorers:
        thread.start()
    try:
        wait_until("clients got no answers", lambda: all(answers))
        v2 = make_onnx_artifact(tmp_path, "churn", seed=1, probability_output=True)
        results = {(r.name, r.version): r.outcome for r in client.reload_models()}
        assert results == {("churn", 2): "LOADED"}
        assert client.list_models()[0].version == 2
        assert client.model_metadata("churn").manifest["test_seed"] == 1
        wait_until("a client never got version 2", lambda: all(a[-1][0] == 2 for a in answers))
        corrupt(make_onnx_artifact(tmp_path, "churn", seed=2, probability_output=True))
        results = client.reload_models()
        refused = [r for r in results if r.outcome == "REFUSED"]
        assert [(r.name, r.version) for r in refused] == [("churn", 3)]
        assert "SHA-256" in refused[0].reason
        (model,) = client.list_models()
        assert (model.version, model.loaded_versions) == (2, (1, 2))
        assert client.model_metadata("churn", version=1).summary.version == 1
        counts = [len(a) for a in answers]
        wait_until(
            "clients stopped getting answers after the refused reload",
            lambda: all(len(a) > n for a, n in zip(answers, counts, strict=True)),
        )
    finally:
        stop.set()
        for thread in scorers:
            thread.join()
        client.close()
    assert not failures, failures[:3]
    expected = {1: _probability(v1, features), 2: _probability(v2, features)}
    assert abs(expected[1] - expected[2]) > 1e-3, "the two versions cannot be told apart"
    for mine in answers:
        versions = [version for version, _ in mine]
        assert versions[0] == 1 and versions[-1] == 2
        assert versions == sorted(versions), "a client was answered by version 1 after 2"
        for version, probability in mine:
            assert probability == pytest.approx(expected[version], abs=1e-6), version
    samples = scrape(server.metrics_url)
    assert sample(samples, "crm_model_reloads_total", model="churn", outcome="refused") == 1
    assert sample(samples, "crm_model_info", model="churn", version="2", serving="true") == 1


def test_watcher_loads_new_versions_without_a_call(start_server, churn_artifacts: Path) -> None:
    server = start_server(churn_artifacts, extra_args=["--reload-interval-seconds", "0.2"])
    make_onnx_artifact(churn_artifacts, "churn", seed=5)
    with CrmClient(server.target) as client:
        deadline = time.monotonic() + 10
        while client.list_models()[0].version != 2:
            assert time.monotonic() < deadline, "watcher did not load version 2"
            time.sleep(0.1)


def test_startup_skips_a_corrupt_newest_version(start_server, churn_artifacts: Path) -> None:
    corrupt(make_onnx_artifact(churn_artifacts, "churn", seed=3))
    server = start_server(churn_artifacts)
    with CrmClient(server.target) as client:
        assert client.list_models()[0].version == 1
        assert client.health("crm.v1.ChurnService") == "SERVING"


def test_pinned_version_is_served(start_server, churn_artifacts: Path) -> None:
    make_onnx_artifact(churn_artifacts, "churn", seed=4)
    server = start_server(churn_artifacts, extra_args=["--pin", "churn=1"])
    with CrmClient(server.target) as client:
        assert client.list_models()[0].version == 1


def test_busy_port_fails_startup(start_server, tmp_path: Path) -> None:
    first = start_server()
    from tests.serverproc import launch

    with pytest.raises(RuntimeError, match="exited with 2"):
        launch(tmp_path, tmp_path, port=first.port)

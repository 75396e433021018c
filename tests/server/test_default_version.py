"""The default version chosen at run time (SetDefaultVersion / ClearDefaultVersion) on a real
server over the trained artifacts plus a second churn version whose probabilities are halved:
every way of scoring follows the pin, the pin survives a restart, clearing it serves the
newest again, bad requests name their field, and a pin whose directory goes away is dropped."""

from __future__ import annotations

import shutil
from functools import partial
from pathlib import Path

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2

from crm.v1 import churn_pb2, churn_pb2_grpc, common_pb2, model_pb2, model_pb2_grpc
from inference import open_inference_grpc_pb2 as oip
from inference import open_inference_grpc_pb2_grpc as oip_grpc
from tests.factories import corrupt, rescaled_version
from tests.security.auth_fixtures import bearer, detail, hs256, make_keys, refusal
from tests.serverproc import RunningServer
from tests.serving.helpers import features_of, snapshot

SCALE = 0.5  # version 2's probability is version 1's times this
PINNED = model_pb2.DEFAULT_SOURCE_PINNED
NEWEST = model_pb2.DEFAULT_SOURCE_NEWEST


@pytest.fixture
def artifacts(trained_artifacts: Path, tmp_path: Path) -> Path:
    """A copy of the trained artifacts (churn version 1 only; version 2 is added by tests)."""
    root = tmp_path / "artifacts"
    shutil.copytree(trained_artifacts, root)
    return root


def add_version_2(artifacts: Path) -> Path:
    return rescaled_version(artifacts / "churn" / "1", SCALE)


class Probe:
    """Every way of scoring churn on one server, each saying which version answered."""

    def __init__(self, server: RunningServer, artifacts: Path) -> None:
        self.models = model_pb2_grpc.ModelServiceStub(server.channel)
        self.churn = churn_pb2_grpc.ChurnServiceStub(server.channel)
        self.oip = oip_grpc.GRPCInferenceServiceStub(server.channel)
        self.customer = str(snapshot(artifacts)[0][0])
        self.row = features_of(artifacts, "churn", 0)  # that customer's snapshot row

    def info(self) -> model_pb2.ModelInfo:
        return next(
            m
            for m in self.models.ListModels(model_pb2.ListModelsRequest()).models
            if m.name == "churn"
        )

    def by_features(self) -> tuple[int, float]:
        customer = common_pb2.CustomerInput(features=common_pb2.FeatureValues(values=self.row))
        reply = self.churn.PredictChurn(
            churn_pb2.PredictChurnRequest(customers=[customer]), timeout=10
        )
        return reply.model.version, reply.predictions[0].probability

    def by_id(self) -> tuple[int, float]:
        customer = common_pb2.CustomerInput(customer_id=self.customer)
        reply = self.churn.PredictChurn(
            churn_pb2.PredictChurnRequest(customers=[customer]), timeout=10
        )
        return reply.model.version, reply.predictions[0].probability

    def stats(self) -> tuple[int, float]:
        reply = self.churn.GetChurnStats(churn_pb2.GetChurnStatsRequest(), timeout=10)
        return reply.model.version, reply.snapshot.mean_probability

    def infer(self) -> tuple[int, float]:
        values = np.asarray(list(self.row.values()), dtype=np.float32)
        tensor = oip.ModelInferRequest.InferInputTensor(
            name="features", datatype="FP32", shape=[1, len(values)]
        )
        tensor.contents.fp32_contents.extend(values.tolist())
        reply = self.oip.ModelInfer(
            oip.ModelInferRequest(model_name="churn", inputs=[tensor]), timeout=10
        )
        return int(reply.model_version), reply.outputs[0].contents.fp32_contents[0]

    def answers(self) -> dict[str, tuple[int, float]]:
        return {
            "by_features": self.by_features(),
            "by_id": self.by_id(),
            "stats": self.stats(),
            "oip": self.infer(),
        }

    def set(self, version: int) -> model_pb2.ModelInfo:
        request = model_pb2.SetDefaultVersionRequest(name="churn", version=version)
        return self.models.SetDefaultVersion(request, timeout=30).info

    def clear(self) -> model_pb2.ModelInfo:
        request = model_pb2.ClearDefaultVersionRequest(name="churn")
        return self.models.ClearDefaultVersion(request, timeout=30).info


def assert_served(
    answers: dict[str, tuple[int, float]], version: int, expected: dict[str, tuple[int, float]]
) -> None:
    """Every way of scoring answered with `version`, and with that version's numbers."""
    assert {k: v for k, (v, _) in answers.items()} == dict.fromkeys(answers, version)
    for key, (_, value) in answers.items():
        assert value == pytest.approx(expected[key][1], rel=1e-5), key


def test_pin_is_served_survives_a_restart_and_clears(
    start_server, artifacts: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    server = start_server(artifacts, data_dir)
    probe = Probe(server, artifacts)
    v1 = probe.answers()
    add_version_2(artifacts)
    reloads = probe.models.ReloadModels(model_pb2.ReloadModelsRequest(), timeout=60).results
    assert ("churn", 2, model_pb2.RELOAD_OUTCOME_LOADED) in {
        (r.name, r.version, r.outcome) for r in reloads
    }
    info = probe.info()
    assert (info.version, info.default_version, info.default_source) == (2, 2, NEWEST)
    v2 = probe.answers()
    assert_served(v2, 2, v2)
    for key in ("by_features", "by_id", "oip"):  # the two versions answer differently
        assert v2[key][1] == pytest.approx(v1[key][1] * SCALE, rel=1e-5), key

    pinned = probe.set(1)
    assert (pinned.version, pinned.default_version, pinned.default_source) == (1, 1, PINNED)
    assert list(pinned.loaded_versions) == [1, 2]
    assert_served(probe.answers(), 1, v1)
    meta = probe.models.GetModelMetadata(
        model_pb2.GetModelMetadataRequest(name="churn", version=2)
    ).info
    assert (meta.version, meta.default_version, meta.default_source) == (2, 1, PINNED)
    # a reload keeps the pin and says so
    reloads = probe.models.ReloadModels(model_pb2.ReloadModelsRequest(), timeout=60).results
    churn = [r for r in reloads if r.name == "churn"]
    assert churn and all("version 1 stays the default (pinned)" in r.reason for r in churn), churn
    assert_served(probe.answers(), 1, v1)

    assert server.stop() == 0
    server = start_server(artifacts, data_dir)
    probe = Probe(server, artifacts)
    info = probe.info()
    assert (info.version, info.default_version, info.default_source) == (1, 1, PINNED)
    assert list(info.loaded_versions) == [1, 2]
    assert_served(probe.answers(), 1, v1)

    cleared = probe.clear()
    assert (cleared.version, cleared.default_version, cleared.default_source) == (2, 2, NEWEST)
    assert_served(probe.answers(), 2, v2)
    assert server.stop() == 0
    server = start_server(artifacts, data_dir)
    assert Probe(server, artifacts).info().default_source == NEWEST


def _refused(call) -> tuple[grpc.StatusCode, list[str], str]:
    err, status = refusal(call)
    bad = detail(status, error_details_pb2.BadRequest)
    fields = [v.field for v in bad.field_violations] if bad is not None else []
    return err.code(), fields, err.details()


def test_bad_pins_name_their_field(start_server, artifacts: Path) -> None:
    add_version_2(artifacts)
    rescaled_version(artifacts / "churn" / "1", 0.25)  # version 3: only the newest loads
    server = start_server(artifacts)
    probe = Probe(server, artifacts)
    assert list(probe.info().loaded_versions) == [3]
    models = probe.models

    def pin(name: str, version: int):
        return lambda: models.SetDefaultVersion(
            model_pb2.SetDefaultVersionRequest(name=name, version=version), timeout=10
        )

    assert _refused(pin("", 1))[:2] == (grpc.StatusCode.INVALID_ARGUMENT, ["name"])
    assert _refused(pin("churn", 0))[:2] == (grpc.StatusCode.INVALID_ARGUMENT, ["version"])
    assert _refused(pin("churn", -4))[:2] == (grpc.StatusCode.INVALID_ARGUMENT, ["version"])
    assert _refused(pin("no-such-model", 1))[:2] == (grpc.StatusCode.NOT_FOUND, ["name"])
    assert _refused(pin("churn", 9))[:2] == (grpc.StatusCode.NOT_FOUND, ["version"])
    code, fields, message = _refused(pin("churn", 1))
    assert (code, fields) == (grpc.StatusCode.FAILED_PRECONDITION, ["version"])
    assert "not loaded" in message
    clear = models.ClearDefaultVersion
    assert _refused(lambda: clear(model_pb2.ClearDefaultVersionRequest(), timeout=10))[:2] == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["name"],
    )
    request = model_pb2.ClearDefaultVersionRequest(name="nope")
    assert _refused(lambda: clear(request, timeout=10))[:2] == (grpc.StatusCode.NOT_FOUND, ["name"])
    # nothing above changed what is served; clearing without a pin is harmless
    assert (probe.info().default_version, probe.info().default_source) == (3, NEWEST)
    assert probe.clear().default_version == 3
    assert "Traceback" not in server.logs()


def test_a_pinned_version_whose_directory_is_gone_falls_back_to_the_newest(
    start_server, artifacts: Path, tmp_path: Path
) -> None:
    server = start_server(artifacts, tmp_path / "data")
    probe = Probe(server, artifacts)
    add_version_2(artifacts)
    probe.models.ReloadModels(model_pb2.ReloadModelsRequest(), timeout=60)
    assert probe.set(1).default_version == 1
    shutil.rmtree(artifacts / "churn" / "1")
    reloads = probe.models.ReloadModels(model_pb2.ReloadModelsRequest(), timeout=60).results
    churn = [r for r in reloads if r.name == "churn"]
    assert any(
        "pinned default version 1 is gone" in r.reason
        and "serving the newest, version 2" in r.reason
        for r in churn
    ), churn
    info = probe.info()
    assert (info.default_version, info.default_source) == (2, NEWEST)
    assert probe.by_features()[0] == 2
    (gone,) = [
        r for r in server.log_records() if r.get("msg") == "pinned default version gone; unpinned"
    ]
    assert (gone["model"], gone["version"]) == ("churn", 1)
    assert server.stop() == 0  # the pin was dropped from the store too
    assert (
        Probe(start_server(artifacts, tmp_path / "data"), artifacts).info().default_source == NEWEST
    )


def test_only_admin_tokens_pin(start_server, artifacts: Path, tmp_path: Path) -> None:
    keys = make_keys(tmp_path / "keys")
    add_version_2(artifacts)
    server = start_server(artifacts, extra_args=keys.server_args())
    models = model_pb2_grpc.ModelServiceStub(server.channel)
    pin = model_pb2.SetDefaultVersionRequest(name="churn", version=2)
    clear = model_pb2.ClearDefaultVersionRequest(name="churn")
    for scopes in ("score", "score alerts campaign:write integrity:write"):
        token = bearer(hs256(keys, scopes))
        for call in (
            partial(models.SetDefaultVersion, pin, metadata=token, timeout=10),
            partial(models.ClearDefaultVersion, clear, metadata=token, timeout=10),
        ):
            err, status = refusal(call)
            assert err.code() == grpc.StatusCode.PERMISSION_DENIED
            assert dict(detail(status, error_details_pb2.ErrorInfo).metadata) == {"scope": "admin"}
    admin = bearer(hs256(keys, "admin"))
    info = models.SetDefaultVersion(pin, metadata=admin, timeout=30).info
    assert (info.default_version, info.default_source) == (2, PINNED)
    assert (
        models.ClearDefaultVersion(clear, metadata=admin, timeout=30).info.default_source == NEWEST
    )


def test_a_pinned_version_that_fails_its_checks_on_start_is_reported_and_kept(
    start_server, artifacts: Path, tmp_path: Path
) -> None:
    """The pin outlives a start where its version is refused: the newest serves meanwhile,
    ReloadModels says why, and once the files are good again the pin serves."""
    data_dir = tmp_path / "data"
    server = start_server(artifacts, data_dir)
    probe = Probe(server, artifacts)
    add_version_2(artifacts)
    probe.models.ReloadModels(model_pb2.ReloadModelsRequest(), timeout=60)
    assert probe.set(1).default_version == 1
    assert server.stop() == 0
    good = (artifacts / "churn" / "1" / "model.onnx").read_bytes()
    corrupt(artifacts / "churn" / "1")
    server = start_server(artifacts, data_dir)
    probe = Probe(server, artifacts)
    assert (probe.info().default_version, probe.info().default_source) == (2, NEWEST)
    assert probe.by_features()[0] == 2
    reloads = probe.models.ReloadModels(model_pb2.ReloadModelsRequest(), timeout=60).results
    refused = [
        r for r in reloads if r.name == "churn" and r.outcome == model_pb2.RELOAD_OUTCOME_REFUSED
    ]
    assert [r.version for r in refused] == [1] and "SHA-256" in refused[0].reason
    noted = [r.reason for r in reloads if r.name == "churn" and r.version == 2]
    assert noted == [
        "pinned default version 1 did not load; serving the newest, version 2, until it does"
    ]
    (artifacts / "churn" / "1" / "model.onnx").write_bytes(good)
    probe.models.ReloadModels(model_pb2.ReloadModelsRequest(), timeout=60)
    assert (probe.info().default_version, probe.info().default_source) == (1, PINNED)
    assert probe.by_features()[0] == 1

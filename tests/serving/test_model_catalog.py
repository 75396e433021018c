"""ModelService explains its models: ListModels lists the ONNX models apart from the data
artifacts, and every model input comes with its meaning, unit and (churn) typical value, from
the manifest or, for a manifest written before `feature_docs`, from the feature code's table."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from crm.feature_docs import from_code
from crm.v1 import model_pb2, model_pb2_grpc
from tests.helpers import run_cli
from tests.serverproc import RunningServer

MODELS = {"churn", "spend", "segmentation", "revenue", "demand"}
DATA = {"features", "products", "inventory"}


def _list(server: RunningServer) -> model_pb2.ListModelsResponse:
    stub = model_pb2_grpc.ModelServiceStub(server.channel)
    return stub.ListModels(model_pb2.ListModelsRequest(), timeout=10)


def _manifest(artifacts: Path, name: str) -> dict:
    return json.loads((artifacts / name / "1" / "manifest.json").read_text())


def test_list_models_puts_data_artifacts_apart(served: RunningServer) -> None:
    listed = _list(served)
    assert {m.name for m in listed.models} == MODELS
    assert {m.name for m in listed.data_artifacts} == DATA
    for m in listed.models:
        assert m.kind == model_pb2.MODEL_KIND_ONNX, m.name
        assert re.fullmatch("[0-9a-f]{64}", m.onnx_sha256), m.name
        assert m.onnx_sha256 == _manifest(served.artifacts, m.name)["onnx_sha256"]
    for d in listed.data_artifacts:
        assert d.kind == model_pb2.MODEL_KIND_DATA, d.name
        assert d.onnx_sha256 == "" and not d.features, d.name
        assert d.version == 1 and list(d.loaded_versions) == [1]
    meta = model_pb2_grpc.ModelServiceStub(served.channel).GetModelMetadata(
        model_pb2.GetModelMetadataRequest(name="inventory"), timeout=10
    )
    assert meta.info.kind == model_pb2.MODEL_KIND_DATA


def test_every_model_input_has_a_meaning_and_a_unit(served: RunningServer) -> None:
    for m in _list(served).models:
        assert [f.name for f in m.features] == list(m.feature_names), m.name
        undocumented = [f.name for f in m.features if not (f.meaning and f.unit)]
        assert not undocumented, f"{m.name}: {undocumented}"
    churn = next(m for m in _list(served).models if m.name == "churn")
    assert len(churn.features) == 40
    by_name = {f.name: f for f in churn.features}
    assert by_name["recency_days"].unit == "days"
    assert by_name["monetary"].unit == "money"
    means = _manifest(served.artifacts, "churn")["serving"]["feature_means"]
    assert {f.name: f.typical_value for f in churn.features} == means
    assert all(f.HasField("typical_value") for f in churn.features)
    spend = next(m for m in _list(served).models if m.name == "spend")
    assert not any(f.HasField("typical_value") for f in spend.features)  # spend records none


def test_a_manifest_without_feature_docs_falls_back_to_the_code(
    start_server, trained_artifacts: Path, tmp_path: Path
) -> None:
    """churn's manifest loses `feature_docs` (as before the field): the code's table answers;
    spend's carries a changed meaning: the manifest, not the code, is what is served."""
    for name in ("churn", "spend"):
        shutil.copytree(trained_artifacts / name, tmp_path / name)
    churn_path = tmp_path / "churn" / "1" / "manifest.json"
    churn = json.loads(churn_path.read_text())
    del churn["feature_docs"]
    churn_path.write_text(json.dumps(churn))
    spend_path = tmp_path / "spend" / "1" / "manifest.json"
    spend = json.loads(spend_path.read_text())
    spend["feature_docs"][0]["meaning"] = "as the manifest says"
    spend_path.write_text(json.dumps(spend))

    listed = {m.name: m for m in _list(start_server(tmp_path)).models}
    assert set(listed) == {"churn", "spend"}
    served_churn = [(f.name, f.meaning, f.unit) for f in listed["churn"].features]
    code = [(s.name, s.meaning, s.unit) for s in from_code("churn", churn["features"])]
    assert served_churn == code
    assert all(meaning and unit for _, meaning, unit in served_churn)
    first = listed["spend"].features[0]
    assert (first.name, first.meaning) == (spend["features"][0], "as the manifest says")


def test_cli_lists_data_artifacts_apart_and_explains_features(served: RunningServer) -> None:
    target = ["--target", served.target]
    out = run_cli(*target, "models")
    assert out.returncode == 0, out.stderr
    models, data = out.stdout.split("\n\n")
    assert {line.split()[0] for line in models.splitlines()[1:]} == MODELS
    assert {line.split()[0] for line in data.splitlines()[1:]} == DATA
    out = run_cli(*target, "models", "--json")
    assert {m["name"] for m in json.loads(out.stdout)} == MODELS
    out = run_cli(*target, "models", "--data", "--json")
    assert {(m["name"], m["kind"]) for m in json.loads(out.stdout)} == {(d, "DATA") for d in DATA}
    out = run_cli(*target, "models", "--name", "churn", "--features")
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line for line in out.stdout.splitlines()[1:]}
    assert len(rows) == 40
    assert rows["recency_days"].split()[1] == "days"
    assert "days from the last sale invoice" in rows["recency_days"]

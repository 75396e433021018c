"""The Open Inference Protocol through our own generated stubs: typed and raw tensors agree
with PredictChurn, metadata describes the model, readiness agrees with health, and errors carry
the same codes and google.rpc details as the typed API."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from crm.v1 import churn_pb2, churn_pb2_grpc, common_pb2
from inference import open_inference_grpc_pb2 as oip
from inference import open_inference_grpc_pb2_grpc as oip_grpc
from tests.serverproc import RunningServer


def _stub(server: RunningServer) -> oip_grpc.GRPCInferenceServiceStub:
    return oip_grpc.GRPCInferenceServiceStub(server.channel)


def _typed_probability(server: RunningServer, row: dict[str, float]) -> float:
    stub = churn_pb2_grpc.ChurnServiceStub(server.channel)
    reply = stub.PredictChurn(
        churn_pb2.PredictChurnRequest(
            customers=[common_pb2.CustomerInput(features=common_pb2.FeatureValues(values=row))]
        ),
        timeout=10,
    )
    return reply.predictions[0].probability


def _request(row: dict[str, float], *, raw: bool, version: str = "") -> oip.ModelInferRequest:
    values = np.asarray(list(row.values()), dtype=np.float32)
    tensor = oip.ModelInferRequest.InferInputTensor(
        name="features", datatype="FP32", shape=[1, len(row)]
    )
    request = oip.ModelInferRequest(model_name="churn", model_version=version, id="r1")
    if raw:
        request.raw_input_contents.append(values.astype("<f4").tobytes())
    else:
        tensor.contents.fp32_contents.extend(values.tolist())
    request.inputs.append(tensor)
    return request


def _bad_request(err: grpc.RpcError) -> list[str]:
    status = next(
        status_pb2.Status.FromString(v)
        for k, v in err.trailing_metadata()
        if k == "grpc-status-details-bin"
    )
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    return [v.field for v in bad.field_violations]


def test_typed_and_raw_infer_equal_predict_churn(
    oip_server: RunningServer, churn_row: dict[str, float]
) -> None:
    expected = _typed_probability(oip_server, churn_row)
    typed = _stub(oip_server).ModelInfer(_request(churn_row, raw=False), timeout=10)
    assert (typed.model_name, typed.model_version, typed.id) == ("churn", "1", "r1")
    assert not typed.raw_output_contents
    [out] = typed.outputs
    assert (out.name, out.datatype, list(out.shape)) == ("probability", "FP32", [1])
    assert out.contents.fp32_contents[0] == expected
    raw = _stub(oip_server).ModelInfer(_request(churn_row, raw=True, version="1"), timeout=10)
    assert not raw.outputs[0].HasField("contents")
    assert float(np.frombuffer(raw.raw_output_contents[0], "<f4")[0]) == expected


def test_metadata_ready_and_health_agree(oip_server: RunningServer) -> None:
    stub = _stub(oip_server)
    assert stub.ServerLive(oip.ServerLiveRequest(), timeout=5).live
    health = health_pb2_grpc.HealthStub(oip_server.channel)
    listed = health.List(health_pb2.HealthListRequest(), timeout=5).statuses
    serving = all(s.status == health_pb2.HealthCheckResponse.SERVING for s in listed.values())
    assert stub.ServerReady(oip.ServerReadyRequest(), timeout=5).ready == serving
    assert serving  # every model is trained: both say ready
    meta = stub.ModelMetadata(oip.ModelMetadataRequest(name="churn"), timeout=5)
    assert (meta.name, list(meta.versions), meta.platform) == ("churn", ["1"], "onnxruntime_onnx")
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs] == [
        ("features", "FP32", [-1, 40])
    ]
    assert [(t.name, t.datatype) for t in meta.outputs] == [("probability", "FP32")]
    assert meta.properties["feature_names"].split(",")[0] == "recency_days"
    segments = stub.ModelMetadata(oip.ModelMetadataRequest(name="segmentation"), timeout=5)
    assert [(t.name, t.datatype) for t in segments.outputs] == [("cluster", "INT64")]
    assert stub.ModelReady(oip.ModelReadyRequest(name="churn"), timeout=5).ready
    assert not stub.ModelReady(oip.ModelReadyRequest(name="churn", version="7"), timeout=5).ready
    assert not stub.ModelReady(oip.ModelReadyRequest(name="features"), timeout=5).ready
    server_meta = stub.ServerMetadata(oip.ServerMetadataRequest(), timeout=5)
    assert server_meta.name == "crm-serving"


def test_errors_map_to_codes_with_details(
    oip_server: RunningServer, churn_row: dict[str, float]
) -> None:
    stub = _stub(oip_server)
    request = _request(churn_row, raw=False)
    request.model_name = "nope"
    with pytest.raises(grpc.RpcError) as err:
        stub.ModelInfer(request, timeout=5)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        stub.ModelInfer(_request(churn_row, raw=False, version="9"), timeout=5)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    bad = _request(churn_row, raw=False)
    bad.inputs[0].shape[:] = [1, 3]
    bad.inputs[0].datatype = "FP64"
    with pytest.raises(grpc.RpcError) as err:
        stub.ModelInfer(bad, timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _bad_request(err.value) == ["inputs[0].datatype", "inputs[0].shape"]
    negative = dict(churn_row, frequency=-1.0)
    with pytest.raises(grpc.RpcError) as err:
        stub.ModelInfer(_request(negative, raw=True), timeout=5)
    assert _bad_request(err.value) == ["inputs[0][0].frequency"]
    with pytest.raises(grpc.RpcError) as err:
        stub.ModelInfer(_request(churn_row, raw=False, version="x"), timeout=5)
    assert _bad_request(err.value) == ["model_version"]

"""inference.GRPCInferenceService (the Open Inference Protocol, KServe v2; what Triton and
MLServer speak): converts between its messages and the tensor handler, nothing else.

So tritonclient and every tool built for those servers can call our ONNX models unchanged, next
to the typed crm.v1 API, through the same registry, executor, limits and authentication. Every
model takes one FP32 input [-1, F] (F features in the order ModelMetadata's `feature_names`
property gives) and returns its own named outputs. Outputs come back in `raw_output_contents`
when the request sent `raw_input_contents`, else as typed `contents`.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata

import grpc
import numpy as np

from inference import open_inference_grpc_pb2 as oip
from inference import open_inference_grpc_pb2_grpc as oip_grpc
from server.dataplane.tensors import Signature, TensorHandler
from server.errors import FieldViolation, InvalidArgument

PLATFORM = "onnxruntime_onnx"  # Triton's name for an ONNX model run by onnxruntime
Tensors = oip.ModelInferResponse.InferOutputTensor

# Little-endian numpy dtypes of the datatypes our models return, and the typed field of each.
_NUMPY = {"FP32": "<f4", "FP64": "<f8", "INT64": "<i8", "INT32": "<i4", "BOOL": "?"}
_TYPED = {
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "INT64": "int64_contents",
    "INT32": "int_contents",
    "BOOL": "bool_contents",
}


def _server_version() -> str:
    try:
        return metadata.version("crm-serving")
    except metadata.PackageNotFoundError:
        return "0"


def version_of(text: str, field: str) -> int:
    """The protocol's string version as ours: "" is the model's default (0: whatever
    SetDefaultVersion or the newest load made it), else a number >= 1."""
    if not text:
        return 0
    if not text.isdigit() or int(text) < 1:
        raise InvalidArgument.field(
            field, "must be a version number >= 1, or empty for the default"
        )
    return int(text)


def _rows(request: oip.ModelInferRequest, signature: Signature) -> np.ndarray:
    """The one input tensor as float32 [N, F]: checked name, datatype, shape and size."""
    expected = signature.inputs[0]
    width = len(signature.feature_names)
    if len(request.inputs) != 1:
        raise InvalidArgument.field(
            "inputs", f"exactly one input tensor ({expected.name!r}) is required"
        )
    tensor = request.inputs[0]
    problems = []
    if tensor.name != expected.name:
        problems.append(FieldViolation("inputs[0].name", f"must be {expected.name!r}"))
    if tensor.datatype != "FP32":
        problems.append(FieldViolation("inputs[0].datatype", "must be FP32"))
    shape = list(tensor.shape)
    if len(shape) != 2 or shape[1] != width or shape[0] < 0:
        problems.append(FieldViolation("inputs[0].shape", f"must be [rows, {width}]"))
    if problems:
        raise InvalidArgument(problems)
    count = shape[0] * width
    if request.raw_input_contents:
        if len(request.raw_input_contents) != 1:
            raise InvalidArgument.field("raw_input_contents", "one entry per input is required")
        raw = request.raw_input_contents[0]
        if len(raw) != count * 4:
            raise InvalidArgument.field(
                "raw_input_contents[0]", f"{len(raw)} bytes; shape {shape} FP32 takes {count * 4}"
            )
        values = np.frombuffer(raw, dtype="<f4").astype(np.float32, copy=False)
    else:
        typed = tensor.contents.fp32_contents
        if len(typed) != count:
            raise InvalidArgument.field(
                "inputs[0].contents.fp32_contents",
                f"{len(typed)} values; shape {shape} takes {count}",
            )
        values = np.asarray(typed, dtype=np.float32)
    return values.reshape(shape[0], width)


def _wanted(request: oip.ModelInferRequest, signature: Signature) -> list[str]:
    """The outputs asked for (all of them when none is named), in the order asked."""
    known = [t.name for t in signature.outputs]
    if not request.outputs:
        return known
    problems = [
        FieldViolation(f"outputs[{i}].name", f"unknown output; the model has {known}")
        for i, o in enumerate(request.outputs)
        if o.name not in known
    ]
    if problems:
        raise InvalidArgument(problems)
    return [o.name for o in request.outputs]


def _add_output(
    response: oip.ModelInferResponse, name: str, datatype: str, value: np.ndarray, raw: bool
) -> None:
    array = np.asarray(value)
    tensor = response.outputs.add(name=name, datatype=datatype, shape=list(array.shape))
    dtype = _NUMPY.get(datatype)
    if dtype is None:  # not a type our models return: say so rather than guess an encoding
        raise InvalidArgument.field("outputs", f"output {name!r} has datatype {datatype}")
    array = array.astype(dtype, copy=False)
    if raw:
        response.raw_output_contents.append(array.tobytes())
    else:
        getattr(tensor.contents, _TYPED[datatype]).extend(array.reshape(-1).tolist())


class InferenceServicer(oip_grpc.GRPCInferenceServiceServicer):
    def __init__(self, handler: TensorHandler, ready: Callable[[], bool]) -> None:
        """`ready`: whether health reports every crm.v1 service SERVING (ServerReady agrees)."""
        self.handler = handler
        self.ready = ready

    def ServerLive(
        self, request: oip.ServerLiveRequest, context: grpc.ServicerContext
    ) -> oip.ServerLiveResponse:
        return oip.ServerLiveResponse(live=True)

    def ServerReady(
        self, request: oip.ServerReadyRequest, context: grpc.ServicerContext
    ) -> oip.ServerReadyResponse:
        return oip.ServerReadyResponse(ready=self.ready())

    def ServerMetadata(
        self, request: oip.ServerMetadataRequest, context: grpc.ServicerContext
    ) -> oip.ServerMetadataResponse:
        return oip.ServerMetadataResponse(name="crm-serving", version=_server_version())

    def ModelReady(
        self, request: oip.ModelReadyRequest, context: grpc.ServicerContext
    ) -> oip.ModelReadyResponse:
        version = version_of(request.version, "version")
        return oip.ModelReadyResponse(ready=self.handler.ready(request.name, version))

    def ModelMetadata(
        self, request: oip.ModelMetadataRequest, context: grpc.ServicerContext
    ) -> oip.ModelMetadataResponse:
        artifact = self.handler.artifact(request.name, version_of(request.version, "version"))
        sig = self.handler.signature(artifact)
        meta = oip.ModelMetadataResponse.TensorMetadata
        return oip.ModelMetadataResponse(
            name=sig.name,
            versions=[str(v) for v in sig.versions],
            platform=PLATFORM,
            inputs=[meta(name=t.name, datatype=t.datatype, shape=t.shape) for t in sig.inputs],
            outputs=[meta(name=t.name, datatype=t.datatype, shape=t.shape) for t in sig.outputs],
            properties={"feature_names": ",".join(sig.feature_names), "version": str(sig.version)},
        )

    def ModelInfer(
        self, request: oip.ModelInferRequest, context: grpc.ServicerContext
    ) -> oip.ModelInferResponse:
        version = version_of(request.model_version, "model_version")
        artifact = self.handler.artifact(request.model_name, version)
        sig = self.handler.signature(artifact)
        matrix = _rows(request, sig)
        wanted = _wanted(request, sig)
        outputs = self.handler.infer(artifact, matrix, "inputs[0]", context.time_remaining())
        response = oip.ModelInferResponse(
            model_name=artifact.name, model_version=str(artifact.version), id=request.id
        )
        datatypes = {t.name: t.datatype for t in sig.outputs}
        raw = bool(request.raw_input_contents)
        for name in wanted:
            _add_output(response, name, datatypes[name], outputs[name], raw)
        return response

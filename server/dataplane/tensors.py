"""Raw tensor inference for protocols that name a model and send its input matrix as is
(the Open Inference Protocol: server.services.oip). Nothing here knows gRPC.

The rows take the road every typed call takes: the registry picks the version, the executor
batches them with concurrent callers (typed calls of the same model included) and counts them
in the per-model metrics, and the same limits apply (`--max-request-rows`, finite values,
counts >= 0). What differs is the answer: the model's own outputs, unprocessed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from server.dataplane.base import Plane
from server.dataplane.value_checks import check_matrix
from server.errors import InvalidArgument, NotFound, ServiceError
from server.models.artifact import LoadedArtifact
from server.models.runtime import OnnxModel

# ONNX element types as the Open Inference Protocol names them (its "tensor data types").
DATATYPES = {
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(int64)": "INT64",
    "tensor(int32)": "INT32",
    "tensor(bool)": "BOOL",
    "tensor(string)": "BYTES",
}


@dataclass(frozen=True)
class Tensor:
    """A tensor's name, protocol datatype and shape (-1: any length)."""

    name: str
    datatype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Signature:
    """What a model version takes and returns, as a tensor protocol describes it."""

    name: str
    version: int
    versions: tuple[int, ...]  # every loaded version
    feature_names: tuple[str, ...]
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]


def _dims(shape: object) -> tuple[int, ...]:
    """ONNX dimensions with symbolic ones (`N`, None) as -1."""
    if not isinstance(shape, list | tuple):
        return (-1,)
    return tuple(d if isinstance(d, int) and d >= 0 else -1 for d in shape)


class TensorHandler:
    """Model signatures and raw inference for every ONNX model the registry serves."""

    def __init__(self, plane: Plane) -> None:
        self.plane = plane

    def artifact(self, name: str, version: int = 0) -> LoadedArtifact:
        """The ONNX model `name` at `version` (0: serving). NOT_FOUND for an unknown model, a
        version not loaded or a data artifact; UNAVAILABLE for a known model not loaded yet."""
        if not name:
            raise InvalidArgument.field("model_name", "required")
        found = self.plane.registry.get(name, version)
        if not isinstance(found.payload, OnnxModel):
            raise NotFound(f"{name!r} is a data artifact, not a model", "model", name)
        return found

    def ready(self, name: str, version: int = 0) -> bool:
        """Whether `artifact` would answer now; any refusal (unknown, not loaded) is `False`."""
        try:
            self.artifact(name, version)
        except ServiceError:
            return False
        return True

    def models(self) -> list[LoadedArtifact]:
        """The serving version of every ONNX model, by name."""
        return [
            a for a in self.plane.registry.serving().values() if isinstance(a.payload, OnnxModel)
        ]

    def signature(self, artifact: LoadedArtifact) -> Signature:
        model = artifact.model
        session = model.session
        features = len(model.feature_names)
        inputs = (Tensor(model.input_name, "FP32", (-1, features)),)
        outputs = tuple(
            Tensor(o.name, DATATYPES.get(o.type, o.type), _dims(o.shape))
            for o in session.get_outputs()
        )
        versions = tuple(self.plane.registry.loaded_versions(artifact.name))
        return Signature(
            artifact.name, artifact.version, versions, model.feature_names, inputs, outputs
        )

    def infer(
        self, artifact: LoadedArtifact, matrix: np.ndarray, field: str, timeout: float | None
    ) -> dict[str, np.ndarray]:
        """The model's outputs for float32 rows [N, F] in manifest feature order; `field`
        names the input in errors (e.g. `inputs[0]`)."""
        limit = self.plane.resolver.max_rows
        if matrix.shape[0] == 0:
            raise InvalidArgument.field(field, "at least one row is required")
        if matrix.shape[0] > limit:
            raise InvalidArgument.field(
                field, f"{matrix.shape[0]} rows exceed the limit of {limit} per call"
            )
        check_matrix(matrix, artifact.model.feature_names, field)
        with self.plane.counted():
            return self.plane.run(artifact, np.ascontiguousarray(matrix), timeout)

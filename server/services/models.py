"""ModelService: what the registry serves and why, each version's full manifest, reload on
demand, and the default version chosen at run time."""

from __future__ import annotations

import grpc
from google.protobuf import struct_pb2, timestamp_pb2

from crm.artifacts import KIND_ONNX
from crm.feature_docs import documented, typical_values
from crm.v1 import model_pb2, model_pb2_grpc
from server.errors import FieldViolation, InvalidArgument
from server.models.artifact import LoadedArtifact
from server.models.registry import DefaultSource, ModelRegistry, Outcome

_OUTCOMES = {
    Outcome.LOADED: model_pb2.RELOAD_OUTCOME_LOADED,
    Outcome.UNCHANGED: model_pb2.RELOAD_OUTCOME_UNCHANGED,
    Outcome.REFUSED: model_pb2.RELOAD_OUTCOME_REFUSED,
}
_SOURCES = {
    DefaultSource.NEWEST: model_pb2.DEFAULT_SOURCE_NEWEST,
    DefaultSource.PINNED: model_pb2.DEFAULT_SOURCE_PINNED,
}


def _timestamp(text: object) -> timestamp_pb2.Timestamp | None:
    ts = timestamp_pb2.Timestamp()
    try:
        ts.FromJsonString(str(text))
    except ValueError:
        return None
    return ts


def feature_info(artifact: LoadedArtifact) -> list[model_pb2.FeatureInfo]:
    """Each input of a model with meaning, unit (the manifest's `feature_docs`, else the code's
    table) and, where the manifest records training means, a typical value."""
    typical = typical_values(artifact.manifest)
    return [
        model_pb2.FeatureInfo(
            name=s.name, meaning=s.meaning, unit=s.unit, typical_value=typical.get(s.name)
        )
        for s in documented(artifact.name, artifact.manifest)
    ]


def model_info(artifact: LoadedArtifact, registry: ModelRegistry) -> model_pb2.ModelInfo:
    """`artifact` described, with its model's default version and why that one."""
    name = artifact.name
    served = registry.serving().get(name)
    is_model = artifact.kind == KIND_ONNX
    info = model_pb2.ModelInfo(
        name=name,
        version=artifact.version,
        loaded_versions=registry.loaded_versions(name),
        default_version=served.version if served is not None else 0,
        default_source=_SOURCES[registry.default_source(name)],
        onnx_sha256=str(artifact.manifest.get("onnx_sha256", "")),
        feature_names=list(artifact.manifest.get("features") or []),
        kind=model_pb2.MODEL_KIND_ONNX if is_model else model_pb2.MODEL_KIND_DATA,
        features=feature_info(artifact) if is_model else [],
    )
    created = _timestamp(artifact.manifest.get("created_at", ""))
    if created is not None:
        info.created_at.CopyFrom(created)
    info.loaded_at.FromDatetime(artifact.loaded_at)
    return info


class ModelServicer(model_pb2_grpc.ModelServiceServicer):
    def __init__(self, registry: ModelRegistry) -> None:
        self._registry = registry

    def ListModels(
        self, request: model_pb2.ListModelsRequest, context: grpc.ServicerContext
    ) -> model_pb2.ListModelsResponse:
        response = model_pb2.ListModelsResponse()
        for artifact in self._registry.serving().values():
            info = model_info(artifact, self._registry)
            is_model = info.kind == model_pb2.MODEL_KIND_ONNX
            (response.models if is_model else response.data_artifacts).append(info)
        return response

    def GetModelMetadata(
        self, request: model_pb2.GetModelMetadataRequest, context: grpc.ServicerContext
    ) -> model_pb2.GetModelMetadataResponse:
        _require_name(request.name)
        if request.version < 0:
            raise InvalidArgument(FieldViolation("version", "must be >= 0 (0 = serving)"))
        artifact = self._registry.get(request.name, request.version)
        manifest = struct_pb2.Struct()
        manifest.update(dict(artifact.manifest))
        return model_pb2.GetModelMetadataResponse(
            info=model_info(artifact, self._registry),
            manifest=manifest,
        )

    def ReloadModels(
        self, request: model_pb2.ReloadModelsRequest, context: grpc.ServicerContext
    ) -> model_pb2.ReloadModelsResponse:
        return model_pb2.ReloadModelsResponse(
            results=[
                model_pb2.ModelReload(
                    name=r.name, version=r.version, outcome=_OUTCOMES[r.outcome], reason=r.reason
                )
                for r in self._registry.reload()
            ]
        )

    def SetDefaultVersion(
        self, request: model_pb2.SetDefaultVersionRequest, context: grpc.ServicerContext
    ) -> model_pb2.SetDefaultVersionResponse:
        _require_name(request.name)
        if request.version < 1:
            raise InvalidArgument(
                FieldViolation("version", "must be >= 1 (ClearDefaultVersion unpins)")
            )
        self._registry.set_default(request.name, request.version)
        return model_pb2.SetDefaultVersionResponse(info=self._serving_info(request.name))

    def ClearDefaultVersion(
        self, request: model_pb2.ClearDefaultVersionRequest, context: grpc.ServicerContext
    ) -> model_pb2.ClearDefaultVersionResponse:
        _require_name(request.name)
        self._registry.clear_default(request.name)
        return model_pb2.ClearDefaultVersionResponse(info=self._serving_info(request.name))

    def _serving_info(self, name: str) -> model_pb2.ModelInfo:
        return model_info(self._registry.get(name), self._registry)


def _require_name(name: str) -> None:
    if not name:
        raise InvalidArgument(FieldViolation("name", "required"))

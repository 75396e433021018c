"""What the ModelService calls give back, as plain dataclasses, with their wire conversions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crm.v1 import model_pb2


@dataclass(frozen=True)
class FeatureInfo:
    """One model input: its meaning, unit and (when the manifest has one) training mean."""

    name: str
    meaning: str
    unit: str
    typical_value: float | None

    @classmethod
    def from_proto(cls, f: model_pb2.FeatureInfo) -> FeatureInfo:
        typical = f.typical_value if f.HasField("typical_value") else None
        return cls(f.name, f.meaning, f.unit, typical)


@dataclass(frozen=True)
class ModelSummary:
    name: str
    version: int
    loaded_versions: tuple[int, ...]
    onnx_sha256: str
    created_at: datetime | None
    loaded_at: datetime | None
    feature_names: tuple[str, ...]
    kind: str = "ONNX"  # "ONNX" (a model) | "DATA" (a snapshot) | "UNSPECIFIED"
    features: tuple[FeatureInfo, ...] = ()
    default_version: int = 0  # the version a call naming none gets
    default_source: str = ""  # why: "NEWEST" | "PINNED" ("" from a server that does not say)

    @classmethod
    def from_proto(cls, info: model_pb2.ModelInfo) -> ModelSummary:
        return cls(
            name=info.name,
            version=info.version,
            loaded_versions=tuple(info.loaded_versions),
            onnx_sha256=info.onnx_sha256,
            created_at=info.created_at.ToDatetime() if info.HasField("created_at") else None,
            loaded_at=info.loaded_at.ToDatetime() if info.HasField("loaded_at") else None,
            feature_names=tuple(info.feature_names),
            default_version=info.default_version,
            default_source=_source_name(info.default_source),
            kind=model_pb2.ModelKind.Name(info.kind).removeprefix("MODEL_KIND_"),
            features=tuple(FeatureInfo.from_proto(f) for f in info.features),
        )


@dataclass(frozen=True)
class Catalog:
    """What ListModels gives back: the models, and the data artifacts listed apart."""

    models: tuple[ModelSummary, ...]
    data_artifacts: tuple[ModelSummary, ...]

    @classmethod
    def from_proto(cls, r: model_pb2.ListModelsResponse) -> Catalog:
        return cls(
            tuple(ModelSummary.from_proto(m) for m in r.models),
            tuple(ModelSummary.from_proto(m) for m in r.data_artifacts),
        )


def _source_name(source: int) -> str:
    if source == model_pb2.DEFAULT_SOURCE_UNSPECIFIED:
        return ""
    return model_pb2.DefaultSource.Name(source).removeprefix("DEFAULT_SOURCE_")


@dataclass(frozen=True)
class ModelMetadata:
    summary: ModelSummary
    manifest: dict[str, Any]


@dataclass(frozen=True)
class ReloadOutcome:
    name: str
    version: int
    outcome: str  # "LOADED" | "UNCHANGED" | "REFUSED"
    reason: str

    @classmethod
    def from_proto(cls, r: model_pb2.ModelReload) -> ReloadOutcome:
        outcome = model_pb2.ReloadOutcome.Name(r.outcome).removeprefix("RELOAD_OUTCOME_")
        return cls(r.name, r.version, outcome, r.reason)

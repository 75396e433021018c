import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DefaultSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEFAULT_SOURCE_UNSPECIFIED: _ClassVar[DefaultSource]
    DEFAULT_SOURCE_NEWEST: _ClassVar[DefaultSource]
    DEFAULT_SOURCE_PINNED: _ClassVar[DefaultSource]

class ModelKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_KIND_UNSPECIFIED: _ClassVar[ModelKind]
    MODEL_KIND_ONNX: _ClassVar[ModelKind]
    MODEL_KIND_DATA: _ClassVar[ModelKind]

class ReloadOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RELOAD_OUTCOME_UNSPECIFIED: _ClassVar[ReloadOutcome]
    RELOAD_OUTCOME_LOADED: _ClassVar[ReloadOutcome]
    RELOAD_OUTCOME_UNCHANGED: _ClassVar[ReloadOutcome]
    RELOAD_OUTCOME_REFUSED: _ClassVar[ReloadOutcome]
DEFAULT_SOURCE_UNSPECIFIED: DefaultSource
DEFAULT_SOURCE_NEWEST: DefaultSource
DEFAULT_SOURCE_PINNED: DefaultSource
MODEL_KIND_UNSPECIFIED: ModelKind
MODEL_KIND_ONNX: ModelKind
MODEL_KIND_DATA: ModelKind
RELOAD_OUTCOME_UNSPECIFIED: ReloadOutcome
RELOAD_OUTCOME_LOADED: ReloadOutcome
RELOAD_OUTCOME_UNCHANGED: ReloadOutcome
RELOAD_OUTCOME_REFUSED: ReloadOutcome

class FeatureInfo(_message.Message):
    __slots__ = ("name", "meaning", "unit", "typical_value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MEANING_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    TYPICAL_VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    meaning: str
    unit: str
    typical_value: float
    def __init__(self, name: _Optional[str] = ..., meaning: _Optional[str] = ..., unit: _Optional[str] = ..., typical_value: _Optional[float] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "version", "loaded_versions", "onnx_sha256", "created_at", "loaded_at", "feature_names", "kind", "features", "default_version", "default_source")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LOADED_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    ONNX_SHA256_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LOADED_AT_FIELD_NUMBER: _ClassVar[int]
    FEATURE_NAMES_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VERSION_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_SOURCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    loaded_versions: _containers.RepeatedScalarFieldContainer[int]
    onnx_sha256: str
    created_at: _timestamp_pb2.Timestamp
    loaded_at: _timestamp_pb2.Timestamp
    feature_names: _containers.RepeatedScalarFieldContainer[str]
    kind: ModelKind
    features: _containers.RepeatedCompositeFieldContainer[FeatureInfo]
    default_version: int
    default_source: DefaultSource
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., loaded_versions: _Optional[_Iterable[int]] = ..., onnx_sha256: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., loaded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., feature_names: _Optional[_Iterable[str]] = ..., kind: _Optional[_Union[ModelKind, str]] = ..., features: _Optional[_Iterable[_Union[FeatureInfo, _Mapping]]] = ..., default_version: _Optional[int] = ..., default_source: _Optional[_Union[DefaultSource, str]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "data_artifacts")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    DATA_ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    data_artifacts: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ..., data_artifacts: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ...) -> None: ...

class GetModelMetadataRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetModelMetadataResponse(_message.Message):
    __slots__ = ("info", "manifest")
    INFO_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    info: ModelInfo
    manifest: _struct_pb2.Struct
    def __init__(self, info: _Optional[_Union[ModelInfo, _Mapping]] = ..., manifest: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ReloadModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelReload(_message.Message):
    __slots__ = ("name", "version", "outcome", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    outcome: ReloadOutcome
    reason: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., outcome: _Optional[_Union[ReloadOutcome, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class ReloadModelsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ModelReload]
    def __init__(self, results: _Optional[_Iterable[_Union[ModelReload, _Mapping]]] = ...) -> None: ...

class SetDefaultVersionRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class SetDefaultVersionResponse(_message.Message):
    __slots__ = ("info",)
    INFO_FIELD_NUMBER: _ClassVar[int]
    info: ModelInfo
    def __init__(self, info: _Optional[_Union[ModelInfo, _Mapping]] = ...) -> None: ...

class ClearDefaultVersionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ClearDefaultVersionResponse(_message.Message):
    __slots__ = ("info",)
    INFO_FIELD_NUMBER: _ClassVar[int]
    info: ModelInfo
    def __init__(self, info: _Optional[_Union[ModelInfo, _Mapping]] = ...) -> None: ...

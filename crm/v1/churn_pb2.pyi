import datetime

from crm.v1 import common_pb2 as _common_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RiskLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RISK_LEVEL_UNSPECIFIED: _ClassVar[RiskLevel]
    RISK_LEVEL_LOW: _ClassVar[RiskLevel]
    RISK_LEVEL_MEDIUM: _ClassVar[RiskLevel]
    RISK_LEVEL_HIGH: _ClassVar[RiskLevel]
    RISK_LEVEL_CRITICAL: _ClassVar[RiskLevel]
RISK_LEVEL_UNSPECIFIED: RiskLevel
RISK_LEVEL_LOW: RiskLevel
RISK_LEVEL_MEDIUM: RiskLevel
RISK_LEVEL_HIGH: RiskLevel
RISK_LEVEL_CRITICAL: RiskLevel

class Recommendation(_message.Message):
    __slots__ = ("code", "text")
    CODE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    code: str
    text: str
    def __init__(self, code: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class ChurnDriver(_message.Message):
    __slots__ = ("feature", "value", "contribution")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    feature: str
    value: float
    contribution: float
    def __init__(self, feature: _Optional[str] = ..., value: _Optional[float] = ..., contribution: _Optional[float] = ...) -> None: ...

class PredictChurnRequest(_message.Message):
    __slots__ = ("customers", "batch", "include_drivers", "model_version", "as_of")
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_DRIVERS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    customers: _containers.RepeatedCompositeFieldContainer[_common_pb2.CustomerInput]
    batch: _common_pb2.FeatureMatrix
    include_drivers: bool
    model_version: int
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, customers: _Optional[_Iterable[_Union[_common_pb2.CustomerInput, _Mapping]]] = ..., batch: _Optional[_Union[_common_pb2.FeatureMatrix, _Mapping]] = ..., include_drivers: _Optional[bool] = ..., model_version: _Optional[int] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ChurnPrediction(_message.Message):
    __slots__ = ("index", "customer_id", "request_key", "probability", "risk_level", "recommendations", "drivers", "error")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_KEY_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    RISK_LEVEL_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDATIONS_FIELD_NUMBER: _ClassVar[int]
    DRIVERS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    index: int
    customer_id: str
    request_key: str
    probability: float
    risk_level: RiskLevel
    recommendations: _containers.RepeatedCompositeFieldContainer[Recommendation]
    drivers: _containers.RepeatedCompositeFieldContainer[ChurnDriver]
    error: _common_pb2.RowError
    def __init__(self, index: _Optional[int] = ..., customer_id: _Optional[str] = ..., request_key: _Optional[str] = ..., probability: _Optional[float] = ..., risk_level: _Optional[_Union[RiskLevel, str]] = ..., recommendations: _Optional[_Iterable[_Union[Recommendation, _Mapping]]] = ..., drivers: _Optional[_Iterable[_Union[ChurnDriver, _Mapping]]] = ..., error: _Optional[_Union[_common_pb2.RowError, _Mapping]] = ...) -> None: ...

class ChurnColumns(_message.Message):
    __slots__ = ("probabilities", "risk_levels")
    PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    RISK_LEVELS_FIELD_NUMBER: _ClassVar[int]
    probabilities: _containers.RepeatedScalarFieldContainer[float]
    risk_levels: _containers.RepeatedScalarFieldContainer[RiskLevel]
    def __init__(self, probabilities: _Optional[_Iterable[float]] = ..., risk_levels: _Optional[_Iterable[_Union[RiskLevel, str]]] = ...) -> None: ...

class PredictChurnResponse(_message.Message):
    __slots__ = ("model", "horizon_days", "predictions", "columns", "as_of")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    HORIZON_DAYS_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelRef
    horizon_days: int
    predictions: _containers.RepeatedCompositeFieldContainer[ChurnPrediction]
    columns: ChurnColumns
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., horizon_days: _Optional[int] = ..., predictions: _Optional[_Iterable[_Union[ChurnPrediction, _Mapping]]] = ..., columns: _Optional[_Union[ChurnColumns, _Mapping]] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StreamPredictChurnRequest(_message.Message):
    __slots__ = ("sequence", "customers", "batch", "include_drivers", "as_of")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_DRIVERS_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    customers: _containers.RepeatedCompositeFieldContainer[_common_pb2.CustomerInput]
    batch: _common_pb2.FeatureMatrix
    include_drivers: bool
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, sequence: _Optional[int] = ..., customers: _Optional[_Iterable[_Union[_common_pb2.CustomerInput, _Mapping]]] = ..., batch: _Optional[_Union[_common_pb2.FeatureMatrix, _Mapping]] = ..., include_drivers: _Optional[bool] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StreamPredictChurnResponse(_message.Message):
    __slots__ = ("sequence", "model", "horizon_days", "predictions", "columns", "as_of")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    HORIZON_DAYS_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    model: _common_pb2.ModelRef
    horizon_days: int
    predictions: _containers.RepeatedCompositeFieldContainer[ChurnPrediction]
    columns: ChurnColumns
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, sequence: _Optional[int] = ..., model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., horizon_days: _Optional[int] = ..., predictions: _Optional[_Iterable[_Union[ChurnPrediction, _Mapping]]] = ..., columns: _Optional[_Union[ChurnColumns, _Mapping]] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WatchChurnAlertsRequest(_message.Message):
    __slots__ = ("min_probability", "min_risk_level")
    MIN_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    MIN_RISK_LEVEL_FIELD_NUMBER: _ClassVar[int]
    min_probability: float
    min_risk_level: RiskLevel
    def __init__(self, min_probability: _Optional[float] = ..., min_risk_level: _Optional[_Union[RiskLevel, str]] = ...) -> None: ...

class ChurnAlert(_message.Message):
    __slots__ = ("customer_id", "request_key", "probability", "risk_level", "model", "scored_at", "reason", "previous_risk_level", "drivers", "as_of")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_KEY_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    RISK_LEVEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SCORED_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_RISK_LEVEL_FIELD_NUMBER: _ClassVar[int]
    DRIVERS_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    request_key: str
    probability: float
    risk_level: RiskLevel
    model: _common_pb2.ModelRef
    scored_at: _timestamp_pb2.Timestamp
    reason: str
    previous_risk_level: RiskLevel
    drivers: _containers.RepeatedCompositeFieldContainer[ChurnDriver]
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, customer_id: _Optional[str] = ..., request_key: _Optional[str] = ..., probability: _Optional[float] = ..., risk_level: _Optional[_Union[RiskLevel, str]] = ..., model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., scored_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., previous_risk_level: _Optional[_Union[RiskLevel, str]] = ..., drivers: _Optional[_Iterable[_Union[ChurnDriver, _Mapping]]] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WatchChurnAlertsResponse(_message.Message):
    __slots__ = ("alert", "dropped_total")
    ALERT_FIELD_NUMBER: _ClassVar[int]
    DROPPED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    alert: ChurnAlert
    dropped_total: int
    def __init__(self, alert: _Optional[_Union[ChurnAlert, _Mapping]] = ..., dropped_total: _Optional[int] = ...) -> None: ...

class GetChurnStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RiskLevelCount(_message.Message):
    __slots__ = ("risk_level", "count")
    RISK_LEVEL_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    risk_level: RiskLevel
    count: int
    def __init__(self, risk_level: _Optional[_Union[RiskLevel, str]] = ..., count: _Optional[int] = ...) -> None: ...

class ChurnStats(_message.Message):
    __slots__ = ("scored", "by_risk_level", "distribution", "mean_probability")
    SCORED_FIELD_NUMBER: _ClassVar[int]
    BY_RISK_LEVEL_FIELD_NUMBER: _ClassVar[int]
    DISTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    MEAN_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    scored: int
    by_risk_level: _containers.RepeatedCompositeFieldContainer[RiskLevelCount]
    distribution: _containers.RepeatedCompositeFieldContainer[_common_pb2.ScoreBucket]
    mean_probability: float
    def __init__(self, scored: _Optional[int] = ..., by_risk_level: _Optional[_Iterable[_Union[RiskLevelCount, _Mapping]]] = ..., distribution: _Optional[_Iterable[_Union[_common_pb2.ScoreBucket, _Mapping]]] = ..., mean_probability: _Optional[float] = ...) -> None: ...

class GetChurnStatsResponse(_message.Message):
    __slots__ = ("model", "live", "snapshot", "risk_thresholds")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    LIVE_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    RISK_THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelRef
    live: ChurnStats
    snapshot: ChurnStats
    risk_thresholds: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., live: _Optional[_Union[ChurnStats, _Mapping]] = ..., snapshot: _Optional[_Union[ChurnStats, _Mapping]] = ..., risk_thresholds: _Optional[_Iterable[float]] = ...) -> None: ...

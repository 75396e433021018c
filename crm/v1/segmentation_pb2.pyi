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

class Segment(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEGMENT_UNSPECIFIED: _ClassVar[Segment]
    SEGMENT_VIP: _ClassVar[Segment]
    SEGMENT_LOYAL: _ClassVar[Segment]
    SEGMENT_REGULAR: _ClassVar[Segment]
    SEGMENT_NEW: _ClassVar[Segment]
    SEGMENT_AT_RISK: _ClassVar[Segment]
    SEGMENT_LOST: _ClassVar[Segment]
SEGMENT_UNSPECIFIED: Segment
SEGMENT_VIP: Segment
SEGMENT_LOYAL: Segment
SEGMENT_REGULAR: Segment
SEGMENT_NEW: Segment
SEGMENT_AT_RISK: Segment
SEGMENT_LOST: Segment

class AssignSegmentsRequest(_message.Message):
    __slots__ = ("customers", "batch", "model_version", "as_of")
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    customers: _containers.RepeatedCompositeFieldContainer[_common_pb2.CustomerInput]
    batch: _common_pb2.FeatureMatrix
    model_version: int
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, customers: _Optional[_Iterable[_Union[_common_pb2.CustomerInput, _Mapping]]] = ..., batch: _Optional[_Union[_common_pb2.FeatureMatrix, _Mapping]] = ..., model_version: _Optional[int] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SegmentAssignment(_message.Message):
    __slots__ = ("index", "customer_id", "request_key", "recency_score", "frequency_score", "monetary_score", "segment", "segment_name", "cluster_id", "recommended_action", "error")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_KEY_FIELD_NUMBER: _ClassVar[int]
    RECENCY_SCORE_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_SCORE_FIELD_NUMBER: _ClassVar[int]
    MONETARY_SCORE_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_NAME_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDED_ACTION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    index: int
    customer_id: str
    request_key: str
    recency_score: int
    frequency_score: int
    monetary_score: int
    segment: Segment
    segment_name: str
    cluster_id: int
    recommended_action: str
    error: _common_pb2.RowError
    def __init__(self, index: _Optional[int] = ..., customer_id: _Optional[str] = ..., request_key: _Optional[str] = ..., recency_score: _Optional[int] = ..., frequency_score: _Optional[int] = ..., monetary_score: _Optional[int] = ..., segment: _Optional[_Union[Segment, str]] = ..., segment_name: _Optional[str] = ..., cluster_id: _Optional[int] = ..., recommended_action: _Optional[str] = ..., error: _Optional[_Union[_common_pb2.RowError, _Mapping]] = ...) -> None: ...

class SegmentLegend(_message.Message):
    __slots__ = ("cluster_id", "segment", "segment_name", "recommended_action")
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_NAME_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDED_ACTION_FIELD_NUMBER: _ClassVar[int]
    cluster_id: int
    segment: Segment
    segment_name: str
    recommended_action: str
    def __init__(self, cluster_id: _Optional[int] = ..., segment: _Optional[_Union[Segment, str]] = ..., segment_name: _Optional[str] = ..., recommended_action: _Optional[str] = ...) -> None: ...

class SegmentColumns(_message.Message):
    __slots__ = ("segments", "cluster_ids", "recency_scores", "frequency_scores", "monetary_scores", "legend")
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_IDS_FIELD_NUMBER: _ClassVar[int]
    RECENCY_SCORES_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_SCORES_FIELD_NUMBER: _ClassVar[int]
    MONETARY_SCORES_FIELD_NUMBER: _ClassVar[int]
    LEGEND_FIELD_NUMBER: _ClassVar[int]
    segments: _containers.RepeatedScalarFieldContainer[Segment]
    cluster_ids: _containers.RepeatedScalarFieldContainer[int]
    recency_scores: _containers.RepeatedScalarFieldContainer[int]
    frequency_scores: _containers.RepeatedScalarFieldContainer[int]
    monetary_scores: _containers.RepeatedScalarFieldContainer[int]
    legend: _containers.RepeatedCompositeFieldContainer[SegmentLegend]
    def __init__(self, segments: _Optional[_Iterable[_Union[Segment, str]]] = ..., cluster_ids: _Optional[_Iterable[int]] = ..., recency_scores: _Optional[_Iterable[int]] = ..., frequency_scores: _Optional[_Iterable[int]] = ..., monetary_scores: _Optional[_Iterable[int]] = ..., legend: _Optional[_Iterable[_Union[SegmentLegend, _Mapping]]] = ...) -> None: ...

class AssignSegmentsResponse(_message.Message):
    __slots__ = ("model", "assignments", "columns", "as_of")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENTS_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelRef
    assignments: _containers.RepeatedCompositeFieldContainer[SegmentAssignment]
    columns: SegmentColumns
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., assignments: _Optional[_Iterable[_Union[SegmentAssignment, _Mapping]]] = ..., columns: _Optional[_Union[SegmentColumns, _Mapping]] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetSegmentSummaryRequest(_message.Message):
    __slots__ = ("model_version",)
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    model_version: int
    def __init__(self, model_version: _Optional[int] = ...) -> None: ...

class SegmentSummary(_message.Message):
    __slots__ = ("segment", "segment_name", "cluster_id", "customers", "share", "mean_recency_days", "mean_frequency", "mean_monetary", "recommended_action")
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_NAME_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    MEAN_RECENCY_DAYS_FIELD_NUMBER: _ClassVar[int]
    MEAN_FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    MEAN_MONETARY_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDED_ACTION_FIELD_NUMBER: _ClassVar[int]
    segment: Segment
    segment_name: str
    cluster_id: int
    customers: int
    share: float
    mean_recency_days: float
    mean_frequency: float
    mean_monetary: float
    recommended_action: str
    def __init__(self, segment: _Optional[_Union[Segment, str]] = ..., segment_name: _Optional[str] = ..., cluster_id: _Optional[int] = ..., customers: _Optional[int] = ..., share: _Optional[float] = ..., mean_recency_days: _Optional[float] = ..., mean_frequency: _Optional[float] = ..., mean_monetary: _Optional[float] = ..., recommended_action: _Optional[str] = ...) -> None: ...

class GetSegmentSummaryResponse(_message.Message):
    __slots__ = ("model", "segments", "total_customers", "snapshot_as_of", "currency")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_AS_OF_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelRef
    segments: _containers.RepeatedCompositeFieldContainer[SegmentSummary]
    total_customers: int
    snapshot_as_of: _timestamp_pb2.Timestamp
    currency: str
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., segments: _Optional[_Iterable[_Union[SegmentSummary, _Mapping]]] = ..., total_customers: _Optional[int] = ..., snapshot_as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., currency: _Optional[str] = ...) -> None: ...

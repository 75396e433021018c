import datetime

from crm.v1 import common_pb2 as _common_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CategorySpend(_message.Message):
    __slots__ = ("category", "amount")
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    category: str
    amount: float
    def __init__(self, category: _Optional[str] = ..., amount: _Optional[float] = ...) -> None: ...

class PredictSpendRequest(_message.Message):
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

class SpendPrediction(_message.Message):
    __slots__ = ("index", "customer_id", "request_key", "total", "categories", "error")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_KEY_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    index: int
    customer_id: str
    request_key: str
    total: float
    categories: _containers.RepeatedCompositeFieldContainer[CategorySpend]
    error: _common_pb2.RowError
    def __init__(self, index: _Optional[int] = ..., customer_id: _Optional[str] = ..., request_key: _Optional[str] = ..., total: _Optional[float] = ..., categories: _Optional[_Iterable[_Union[CategorySpend, _Mapping]]] = ..., error: _Optional[_Union[_common_pb2.RowError, _Mapping]] = ...) -> None: ...

class SpendColumns(_message.Message):
    __slots__ = ("totals", "categories", "category_amounts")
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_AMOUNTS_FIELD_NUMBER: _ClassVar[int]
    totals: _containers.RepeatedScalarFieldContainer[float]
    categories: _containers.RepeatedScalarFieldContainer[str]
    category_amounts: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, totals: _Optional[_Iterable[float]] = ..., categories: _Optional[_Iterable[str]] = ..., category_amounts: _Optional[_Iterable[float]] = ...) -> None: ...

class PredictSpendResponse(_message.Message):
    __slots__ = ("model", "currency", "horizon_days", "predictions", "columns", "as_of")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    HORIZON_DAYS_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelRef
    currency: str
    horizon_days: int
    predictions: _containers.RepeatedCompositeFieldContainer[SpendPrediction]
    columns: SpendColumns
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., currency: _Optional[str] = ..., horizon_days: _Optional[int] = ..., predictions: _Optional[_Iterable[_Union[SpendPrediction, _Mapping]]] = ..., columns: _Optional[_Union[SpendColumns, _Mapping]] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StreamPredictSpendRequest(_message.Message):
    __slots__ = ("sequence", "customers", "batch", "as_of")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    customers: _containers.RepeatedCompositeFieldContainer[_common_pb2.CustomerInput]
    batch: _common_pb2.FeatureMatrix
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, sequence: _Optional[int] = ..., customers: _Optional[_Iterable[_Union[_common_pb2.CustomerInput, _Mapping]]] = ..., batch: _Optional[_Union[_common_pb2.FeatureMatrix, _Mapping]] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StreamPredictSpendResponse(_message.Message):
    __slots__ = ("sequence", "model", "currency", "horizon_days", "predictions", "columns", "as_of")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    HORIZON_DAYS_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    model: _common_pb2.ModelRef
    currency: str
    horizon_days: int
    predictions: _containers.RepeatedCompositeFieldContainer[SpendPrediction]
    columns: SpendColumns
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, sequence: _Optional[int] = ..., model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., currency: _Optional[str] = ..., horizon_days: _Optional[int] = ..., predictions: _Optional[_Iterable[_Union[SpendPrediction, _Mapping]]] = ..., columns: _Optional[_Union[SpendColumns, _Mapping]] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PredictInvoiceRevenueRequest(_message.Message):
    __slots__ = ("lines", "model_version")
    LINES_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedCompositeFieldContainer[_common_pb2.TransactionLine]
    model_version: int
    def __init__(self, lines: _Optional[_Iterable[_Union[_common_pb2.TransactionLine, _Mapping]]] = ..., model_version: _Optional[int] = ...) -> None: ...

class InvoiceLineRevenue(_message.Message):
    __slots__ = ("index", "gross_revenue", "expected_net_revenue", "error")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    GROSS_REVENUE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_NET_REVENUE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    index: int
    gross_revenue: float
    expected_net_revenue: float
    error: _common_pb2.RowError
    def __init__(self, index: _Optional[int] = ..., gross_revenue: _Optional[float] = ..., expected_net_revenue: _Optional[float] = ..., error: _Optional[_Union[_common_pb2.RowError, _Mapping]] = ...) -> None: ...

class PredictInvoiceRevenueResponse(_message.Message):
    __slots__ = ("model", "currency", "lines", "total_expected_net_revenue")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_EXPECTED_NET_REVENUE_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelRef
    currency: str
    lines: _containers.RepeatedCompositeFieldContainer[InvoiceLineRevenue]
    total_expected_net_revenue: float
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., currency: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[InvoiceLineRevenue, _Mapping]]] = ..., total_expected_net_revenue: _Optional[float] = ...) -> None: ...

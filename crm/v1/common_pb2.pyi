import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelRef(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class TransactionLine(_message.Message):
    __slots__ = ("invoice", "stock_code", "description", "quantity", "invoice_date", "price", "customer_id", "country", "category")
    INVOICE_FIELD_NUMBER: _ClassVar[int]
    STOCK_CODE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    INVOICE_DATE_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    invoice: str
    stock_code: str
    description: str
    quantity: float
    invoice_date: _timestamp_pb2.Timestamp
    price: float
    customer_id: str
    country: str
    category: str
    def __init__(self, invoice: _Optional[str] = ..., stock_code: _Optional[str] = ..., description: _Optional[str] = ..., quantity: _Optional[float] = ..., invoice_date: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., price: _Optional[float] = ..., customer_id: _Optional[str] = ..., country: _Optional[str] = ..., category: _Optional[str] = ...) -> None: ...

class TransactionHistory(_message.Message):
    __slots__ = ("lines", "as_of")
    LINES_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedCompositeFieldContainer[TransactionLine]
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, lines: _Optional[_Iterable[_Union[TransactionLine, _Mapping]]] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class FeatureValues(_message.Message):
    __slots__ = ("values",)
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.ScalarMap[str, float]
    def __init__(self, values: _Optional[_Mapping[str, float]] = ...) -> None: ...

class CustomerInput(_message.Message):
    __slots__ = ("customer_id", "features", "transactions", "request_key")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_KEY_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    features: FeatureValues
    transactions: TransactionHistory
    request_key: str
    def __init__(self, customer_id: _Optional[str] = ..., features: _Optional[_Union[FeatureValues, _Mapping]] = ..., transactions: _Optional[_Union[TransactionHistory, _Mapping]] = ..., request_key: _Optional[str] = ...) -> None: ...

class FeatureMatrix(_message.Message):
    __slots__ = ("feature_names", "values", "row_keys")
    FEATURE_NAMES_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    ROW_KEYS_FIELD_NUMBER: _ClassVar[int]
    feature_names: _containers.RepeatedScalarFieldContainer[str]
    values: _containers.RepeatedScalarFieldContainer[float]
    row_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, feature_names: _Optional[_Iterable[str]] = ..., values: _Optional[_Iterable[float]] = ..., row_keys: _Optional[_Iterable[str]] = ...) -> None: ...

class RowError(_message.Message):
    __slots__ = ("code", "message", "field")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    field: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., field: _Optional[str] = ...) -> None: ...

class ScoreBucket(_message.Message):
    __slots__ = ("upper_bound", "count")
    UPPER_BOUND_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    upper_bound: float
    count: int
    def __init__(self, upper_bound: _Optional[float] = ..., count: _Optional[int] = ...) -> None: ...

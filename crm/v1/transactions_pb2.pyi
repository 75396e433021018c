import datetime

from crm.v1 import common_pb2 as _common_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IngestLine(_message.Message):
    __slots__ = ("line", "line_number")
    LINE_FIELD_NUMBER: _ClassVar[int]
    LINE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    line: _common_pb2.TransactionLine
    line_number: int
    def __init__(self, line: _Optional[_Union[_common_pb2.TransactionLine, _Mapping]] = ..., line_number: _Optional[int] = ...) -> None: ...

class IngestTransactionsRequest(_message.Message):
    __slots__ = ("lines",)
    LINES_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedCompositeFieldContainer[IngestLine]
    def __init__(self, lines: _Optional[_Iterable[_Union[IngestLine, _Mapping]]] = ...) -> None: ...

class IngestTransactionsResponse(_message.Message):
    __slots__ = ("accepted", "duplicates", "customer_ids", "as_of")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    duplicates: int
    customer_ids: _containers.RepeatedScalarFieldContainer[str]
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, accepted: _Optional[int] = ..., duplicates: _Optional[int] = ..., customer_ids: _Optional[_Iterable[str]] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ExportTransactionsRequest(_message.Message):
    __slots__ = ("since", "page_size", "page_token")
    SINCE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    since: _timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    def __init__(self, since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ExportTransactionsResponse(_message.Message):
    __slots__ = ("lines", "next_page_token")
    LINES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedCompositeFieldContainer[IngestLine]
    next_page_token: str
    def __init__(self, lines: _Optional[_Iterable[_Union[IngestLine, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

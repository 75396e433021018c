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

class DatasetFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATASET_FORMAT_UNSPECIFIED: _ClassVar[DatasetFormat]
    DATASET_FORMAT_CSV: _ClassVar[DatasetFormat]
DATASET_FORMAT_UNSPECIFIED: DatasetFormat
DATASET_FORMAT_CSV: DatasetFormat

class HashDatasetRequest(_message.Message):
    __slots__ = ("format", "chunk")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    format: DatasetFormat
    chunk: bytes
    def __init__(self, format: _Optional[_Union[DatasetFormat, str]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class HashDatasetResponse(_message.Message):
    __slots__ = ("sha256", "merkle_root", "rows", "bytes")
    SHA256_FIELD_NUMBER: _ClassVar[int]
    MERKLE_ROOT_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    sha256: bytes
    merkle_root: bytes
    rows: int
    bytes: int
    def __init__(self, sha256: _Optional[bytes] = ..., merkle_root: _Optional[bytes] = ..., rows: _Optional[int] = ..., bytes: _Optional[int] = ...) -> None: ...

class SignedTreeHead(_message.Message):
    __slots__ = ("log", "tree_size", "root_hash", "timestamp", "signature", "public_key")
    LOG_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    ROOT_HASH_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    log: str
    tree_size: int
    root_hash: bytes
    timestamp: _timestamp_pb2.Timestamp
    signature: bytes
    public_key: bytes
    def __init__(self, log: _Optional[str] = ..., tree_size: _Optional[int] = ..., root_hash: _Optional[bytes] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., signature: _Optional[bytes] = ..., public_key: _Optional[bytes] = ...) -> None: ...

class AppendLeavesRequest(_message.Message):
    __slots__ = ("log", "leaves")
    LOG_FIELD_NUMBER: _ClassVar[int]
    LEAVES_FIELD_NUMBER: _ClassVar[int]
    log: str
    leaves: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, log: _Optional[str] = ..., leaves: _Optional[_Iterable[bytes]] = ...) -> None: ...

class AppendLeavesResponse(_message.Message):
    __slots__ = ("first_index", "tree_head")
    FIRST_INDEX_FIELD_NUMBER: _ClassVar[int]
    TREE_HEAD_FIELD_NUMBER: _ClassVar[int]
    first_index: int
    tree_head: SignedTreeHead
    def __init__(self, first_index: _Optional[int] = ..., tree_head: _Optional[_Union[SignedTreeHead, _Mapping]] = ...) -> None: ...

class AppendTransactionsRequest(_message.Message):
    __slots__ = ("log", "transactions")
    LOG_FIELD_NUMBER: _ClassVar[int]
    TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    log: str
    transactions: _containers.RepeatedCompositeFieldContainer[_common_pb2.TransactionLine]
    def __init__(self, log: _Optional[str] = ..., transactions: _Optional[_Iterable[_Union[_common_pb2.TransactionLine, _Mapping]]] = ...) -> None: ...

class AppendTransactionsResponse(_message.Message):
    __slots__ = ("first_index", "tree_head", "leaf_hashes")
    FIRST_INDEX_FIELD_NUMBER: _ClassVar[int]
    TREE_HEAD_FIELD_NUMBER: _ClassVar[int]
    LEAF_HASHES_FIELD_NUMBER: _ClassVar[int]
    first_index: int
    tree_head: SignedTreeHead
    leaf_hashes: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, first_index: _Optional[int] = ..., tree_head: _Optional[_Union[SignedTreeHead, _Mapping]] = ..., leaf_hashes: _Optional[_Iterable[bytes]] = ...) -> None: ...

class GetTreeHeadRequest(_message.Message):
    __slots__ = ("log",)
    LOG_FIELD_NUMBER: _ClassVar[int]
    log: str
    def __init__(self, log: _Optional[str] = ...) -> None: ...

class GetTreeHeadResponse(_message.Message):
    __slots__ = ("tree_head",)
    TREE_HEAD_FIELD_NUMBER: _ClassVar[int]
    tree_head: SignedTreeHead
    def __init__(self, tree_head: _Optional[_Union[SignedTreeHead, _Mapping]] = ...) -> None: ...

class GetInclusionProofRequest(_message.Message):
    __slots__ = ("log", "leaf_index", "leaf_hash", "tree_size")
    LOG_FIELD_NUMBER: _ClassVar[int]
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    LEAF_HASH_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    log: str
    leaf_index: int
    leaf_hash: bytes
    tree_size: int
    def __init__(self, log: _Optional[str] = ..., leaf_index: _Optional[int] = ..., leaf_hash: _Optional[bytes] = ..., tree_size: _Optional[int] = ...) -> None: ...

class GetInclusionProofResponse(_message.Message):
    __slots__ = ("leaf_index", "tree_size", "leaf_hash", "audit_path", "root_hash")
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    LEAF_HASH_FIELD_NUMBER: _ClassVar[int]
    AUDIT_PATH_FIELD_NUMBER: _ClassVar[int]
    ROOT_HASH_FIELD_NUMBER: _ClassVar[int]
    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    audit_path: _containers.RepeatedScalarFieldContainer[bytes]
    root_hash: bytes
    def __init__(self, leaf_index: _Optional[int] = ..., tree_size: _Optional[int] = ..., leaf_hash: _Optional[bytes] = ..., audit_path: _Optional[_Iterable[bytes]] = ..., root_hash: _Optional[bytes] = ...) -> None: ...

class GetConsistencyProofRequest(_message.Message):
    __slots__ = ("log", "first_tree_size", "second_tree_size")
    LOG_FIELD_NUMBER: _ClassVar[int]
    FIRST_TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    SECOND_TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    log: str
    first_tree_size: int
    second_tree_size: int
    def __init__(self, log: _Optional[str] = ..., first_tree_size: _Optional[int] = ..., second_tree_size: _Optional[int] = ...) -> None: ...

class GetConsistencyProofResponse(_message.Message):
    __slots__ = ("first_tree_size", "second_tree_size", "proof", "first_root_hash", "second_root_hash")
    FIRST_TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    SECOND_TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    FIRST_ROOT_HASH_FIELD_NUMBER: _ClassVar[int]
    SECOND_ROOT_HASH_FIELD_NUMBER: _ClassVar[int]
    first_tree_size: int
    second_tree_size: int
    proof: _containers.RepeatedScalarFieldContainer[bytes]
    first_root_hash: bytes
    second_root_hash: bytes
    def __init__(self, first_tree_size: _Optional[int] = ..., second_tree_size: _Optional[int] = ..., proof: _Optional[_Iterable[bytes]] = ..., first_root_hash: _Optional[bytes] = ..., second_root_hash: _Optional[bytes] = ...) -> None: ...

class GetLeavesRequest(_message.Message):
    __slots__ = ("log", "start", "end")
    LOG_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    log: str
    start: int
    end: int
    def __init__(self, log: _Optional[str] = ..., start: _Optional[int] = ..., end: _Optional[int] = ...) -> None: ...

class Leaf(_message.Message):
    __slots__ = ("index", "data", "leaf_hash")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    LEAF_HASH_FIELD_NUMBER: _ClassVar[int]
    index: int
    data: bytes
    leaf_hash: bytes
    def __init__(self, index: _Optional[int] = ..., data: _Optional[bytes] = ..., leaf_hash: _Optional[bytes] = ...) -> None: ...

class GetLeavesResponse(_message.Message):
    __slots__ = ("leaves",)
    LEAVES_FIELD_NUMBER: _ClassVar[int]
    leaves: _containers.RepeatedCompositeFieldContainer[Leaf]
    def __init__(self, leaves: _Optional[_Iterable[_Union[Leaf, _Mapping]]] = ...) -> None: ...

"""What a log store returns, and the rule for log names: plain records, no storage."""

from __future__ import annotations

import re
from dataclasses import dataclass

from server.errors import InvalidArgument

DEFAULT_LOG = "default"
_LOG_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True)
class TreeHead:
    log: str
    tree_size: int
    root_hash: bytes
    timestamp_ms: int
    signature: bytes


@dataclass(frozen=True)
class Appended:
    first_index: int
    head: TreeHead
    leaf_hashes: tuple[bytes, ...]


@dataclass(frozen=True)
class InclusionProof:
    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    audit_path: tuple[bytes, ...]
    root_hash: bytes


@dataclass(frozen=True)
class ConsistencyProof:
    first_tree_size: int
    second_tree_size: int
    proof: tuple[bytes, ...]
    first_root_hash: bytes
    second_root_hash: bytes


@dataclass(frozen=True)
class StoredLeaf:
    index: int
    data: bytes
    leaf_hash: bytes


def log_name(name: str) -> str:
    """The log a request names ("" is "default"); INVALID_ARGUMENT on a malformed name."""
    name = name or DEFAULT_LOG
    if not _LOG_NAME.fullmatch(name):
        raise InvalidArgument.field(
            "log", "use 1-64 letters, digits, '-', '_' or '.' (empty means 'default')"
        )
    return name

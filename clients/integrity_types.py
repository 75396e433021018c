"""What the IntegrityService calls give back, as plain dataclasses (hashes as bytes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crm.v1 import integrity_pb2


@dataclass(frozen=True)
class TreeHead:
    log: str
    tree_size: int
    root_hash: bytes
    timestamp_ms: int
    signature: bytes
    public_key: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "log": self.log,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "timestamp_ms": self.timestamp_ms,
            "signature": self.signature.hex(),
            "public_key": self.public_key.hex(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TreeHead:
        return cls(
            log=str(data["log"]),
            tree_size=int(data["tree_size"]),
            root_hash=bytes.fromhex(data["root_hash"]),
            timestamp_ms=int(data["timestamp_ms"]),
            signature=bytes.fromhex(data["signature"]),
            public_key=bytes.fromhex(data["public_key"]),
        )

    @classmethod
    def from_proto(cls, message: integrity_pb2.SignedTreeHead) -> TreeHead:
        millis = message.timestamp.seconds * 1000 + message.timestamp.nanos // 1_000_000
        return cls(
            log=message.log,
            tree_size=message.tree_size,
            root_hash=message.root_hash,
            timestamp_ms=millis,
            signature=message.signature,
            public_key=message.public_key,
        )


@dataclass(frozen=True)
class Appended:
    first_index: int
    count: int
    tree_head: TreeHead
    leaf_hashes: tuple[bytes, ...]  # hashes of the appended leaves, in order


@dataclass(frozen=True)
class InclusionProof:
    log: str
    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    audit_path: tuple[bytes, ...]
    root_hash: bytes


@dataclass(frozen=True)
class ConsistencyProof:
    log: str
    first_tree_size: int
    second_tree_size: int
    proof: tuple[bytes, ...]
    first_root_hash: bytes
    second_root_hash: bytes


@dataclass(frozen=True)
class Leaf:
    index: int
    data: bytes
    leaf_hash: bytes

"""IntegrityClient: the Integrity service's calls as plain dataclasses, plus the checks that let
a client trust nothing the server says without proof.

Verification uses only crm.merkle (shared code) and `cryptography`: a tree head is trusted once
its Ed25519 signature verifies under a key the caller pinned, a leaf once its audit path leads to
that head's root, and a newer head once a consistency proof links it to an older trusted one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from clients.calls import Caller
from crm import merkle
from crm.lineage import CHUNK_BYTES, DatasetDigest
from crm.v1 import common_pb2, integrity_pb2, integrity_pb2_grpc


class VerificationError(Exception):
    """A signature, proof or head that does not check out: the server cannot be trusted."""


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


# -- verification (no server code) ---------------------------------------------------------------


def verify_tree_head(head: TreeHead, trusted_key: bytes | None = None) -> None:
    """Check a head's signature; with `trusted_key`, also that it is that key which signed.

    Without a trusted key the head's own key is used, which proves integrity but not origin:
    pin the key (trust on first use) to detect a different signer.
    """
    if trusted_key is not None and head.public_key != trusted_key:
        raise VerificationError(
            f"tree head signed by key {head.public_key.hex()}, expected {trusted_key.hex()}"
        )
    try:
        key = Ed25519PublicKey.from_public_bytes(head.public_key)
        message = merkle.tree_head_signing_input(
            head.log, head.tree_size, head.timestamp_ms, head.root_hash
        )
        key.verify(head.signature, message)
    except (InvalidSignature, ValueError) as err:
        raise VerificationError(f"bad tree head signature for log {head.log!r}: {err}") from None


def verify_inclusion(proof: InclusionProof, head: TreeHead, leaf_data: bytes | None = None) -> None:
    """Check that the proved leaf (and `leaf_data`, if given) is in the tree `head` signs."""
    if (proof.log, proof.tree_size, proof.root_hash) != (head.log, head.tree_size, head.root_hash):
        raise VerificationError(
            f"proof is for {proof.log!r} size {proof.tree_size}, head is {head.log!r} "
            f"size {head.tree_size} (or their roots differ)"
        )
    if leaf_data is not None and merkle.leaf_hash(leaf_data) != proof.leaf_hash:
        raise VerificationError(f"leaf {proof.leaf_index}: data does not match its leaf hash")
    if not merkle.verify_inclusion(
        proof.leaf_hash, proof.leaf_index, proof.tree_size, proof.audit_path, head.root_hash
    ):
        raise VerificationError(
            f"inclusion proof of leaf {proof.leaf_index} in size {proof.tree_size} fails"
        )


def verify_consistency(old: TreeHead, new: TreeHead, proof: ConsistencyProof) -> None:
    """Check that `new` extends `old`: the log was appended to, never rewritten.

    Only the proof's hashes are used, against the two trusted roots; the roots the server
    reports alongside serve to explain a failure.
    """
    if old.log != new.log:
        raise VerificationError(f"heads of different logs: {old.log!r} and {new.log!r}")
    if old.tree_size > new.tree_size:
        raise VerificationError(f"log shrank from {old.tree_size} to {new.tree_size} leaves")
    if (proof.first_tree_size, proof.second_tree_size) != (old.tree_size, new.tree_size):
        raise VerificationError(
            f"consistency proof is for sizes {proof.first_tree_size} -> "
            f"{proof.second_tree_size}, not {old.tree_size} -> {new.tree_size}"
        )
    if not merkle.verify_consistency(
        old.tree_size, new.tree_size, old.root_hash, new.root_hash, proof.proof
    ):
        rewritten = (
            f"; the server now gives root {proof.first_root_hash.hex()} for size "
            f"{old.tree_size}, the trusted head has {old.root_hash.hex()}"
            if proof.first_root_hash != old.root_hash
            else ""
        )
        raise VerificationError(
            f"log {new.log!r} size {new.tree_size} is not an extension of the trusted size "
            f"{old.tree_size}{rewritten}"
        )


# -- the client ------------------------------------------------------------------------------


class IntegrityClient:
    """Calls IntegrityService on a channel; raises clients.errors.CrmError on an RPC failure."""

    def __init__(
        self, channel: grpc.Channel, timeout: float = 10.0, *, call: Caller | None = None
    ) -> None:
        """`call`: share a CrmClient's deadline and error mapping instead of `timeout`."""
        self._stub = integrity_pb2_grpc.IntegrityServiceStub(channel)
        self._call = call or Caller(timeout)

    def hash_dataset(
        self, chunks: Iterable[bytes], timeout: float | None = 3600.0
    ) -> DatasetDigest:
        """Stream a CSV's bytes; the server returns its SHA-256, Merkle root and row count."""

        def requests() -> Iterator[integrity_pb2.HashDatasetRequest]:
            for chunk in chunks:
                yield integrity_pb2.HashDatasetRequest(
                    format=integrity_pb2.DATASET_FORMAT_CSV, chunk=chunk
                )

        response = self._call(self._stub.HashDataset, requests(), timeout)
        return DatasetDigest(response.sha256, response.merkle_root, response.rows, response.bytes)

    def hash_file(self, path: str | Path, chunk_bytes: int = CHUNK_BYTES) -> DatasetDigest:
        with open(path, "rb") as fh:
            return self.hash_dataset(iter(lambda: fh.read(chunk_bytes), b""))

    def append_leaves(self, leaves: Sequence[bytes], log: str = "") -> Appended:
        response = self._call(
            self._stub.AppendLeaves, integrity_pb2.AppendLeavesRequest(log=log, leaves=leaves)
        )
        head = _head(response.tree_head)
        hashes = tuple(merkle.leaf_hash(leaf) for leaf in leaves)
        return Appended(response.first_index, len(leaves), head, hashes)

    def append_transactions(
        self, lines: Sequence[common_pb2.TransactionLine], log: str = ""
    ) -> Appended:
        response = self._call(
            self._stub.AppendTransactions,
            integrity_pb2.AppendTransactionsRequest(log=log, transactions=lines),
        )
        head = _head(response.tree_head)
        return Appended(response.first_index, len(lines), head, tuple(response.leaf_hashes))

    def tree_head(self, log: str = "") -> TreeHead:
        response = self._call(self._stub.GetTreeHead, integrity_pb2.GetTreeHeadRequest(log=log))
        return _head(response.tree_head)

    def inclusion_proof(
        self,
        *,
        leaf_index: int | None = None,
        leaf_hash: bytes | None = None,
        tree_size: int = 0,
        log: str = "",
    ) -> InclusionProof:
        """Audit path of a leaf (by index or hash) in the tree of `tree_size` (0 = current)."""
        request = integrity_pb2.GetInclusionProofRequest(log=log, tree_size=tree_size)
        if leaf_hash is not None:
            request.leaf_hash = leaf_hash
        elif leaf_index is not None:
            request.leaf_index = leaf_index
        response = self._call(self._stub.GetInclusionProof, request)
        return InclusionProof(
            log=log or "default",
            leaf_index=response.leaf_index,
            tree_size=response.tree_size,
            leaf_hash=response.leaf_hash,
            audit_path=tuple(response.audit_path),
            root_hash=response.root_hash,
        )

    def consistency_proof(
        self, first_tree_size: int, second_tree_size: int = 0, log: str = ""
    ) -> ConsistencyProof:
        response = self._call(
            self._stub.GetConsistencyProof,
            integrity_pb2.GetConsistencyProofRequest(
                log=log, first_tree_size=first_tree_size, second_tree_size=second_tree_size
            ),
        )
        return ConsistencyProof(
            log=log or "default",
            first_tree_size=response.first_tree_size,
            second_tree_size=response.second_tree_size,
            proof=tuple(response.proof),
            first_root_hash=response.first_root_hash,
            second_root_hash=response.second_root_hash,
        )

    def leaves(self, start: int, end: int, log: str = "") -> list[Leaf]:
        response = self._call(
            self._stub.GetLeaves, integrity_pb2.GetLeavesRequest(log=log, start=start, end=end)
        )
        return [Leaf(leaf.index, leaf.data, leaf.leaf_hash) for leaf in response.leaves]

    # -- verified operations -------------------------------------------------------------------
    def verified_head(self, log: str = "", trusted_key: bytes | None = None) -> TreeHead:
        head = self.tree_head(log)
        verify_tree_head(head, trusted_key)
        return head

    def prove_leaf(
        self, leaf_index: int, log: str = "", trusted_key: bytes | None = None
    ) -> tuple[TreeHead, InclusionProof, Leaf]:
        """Fetch a signed head, a leaf and its audit path, and check all three fit together."""
        head = self.verified_head(log, trusted_key)
        proof = self.inclusion_proof(leaf_index=leaf_index, tree_size=head.tree_size, log=log)
        (leaf,) = self.leaves(leaf_index, leaf_index + 1, log)
        verify_inclusion(proof, head, leaf.data)
        return head, proof, leaf

    def prove_extends(self, old: TreeHead, trusted_key: bytes | None = None) -> TreeHead:
        """The current signed head of old's log, checked to be an append-only extension of old."""
        verify_tree_head(old, trusted_key)
        new = self.verified_head(old.log, trusted_key or old.public_key)
        if new.tree_size < old.tree_size:
            raise VerificationError(
                f"log {old.log!r} shrank from {old.tree_size} to {new.tree_size} leaves"
            )
        proof = self.consistency_proof(old.tree_size, new.tree_size, old.log)
        verify_consistency(old, new, proof)
        return new


def _head(message: integrity_pb2.SignedTreeHead) -> TreeHead:
    millis = message.timestamp.seconds * 1000 + message.timestamp.nanos // 1_000_000
    return TreeHead(
        log=message.log,
        tree_size=message.tree_size,
        root_hash=message.root_hash,
        timestamp_ms=millis,
        signature=message.signature,
        public_key=message.public_key,
    )

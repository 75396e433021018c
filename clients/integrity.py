"""IntegrityClient: the Integrity service's calls as plain dataclasses (clients.integrity_types),
and verified operations that check every answer (clients.integrity_verify) before returning it.

The result types and the verification functions are exported here too, where callers import
them from.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import grpc

from clients.calls import Caller
from clients.integrity_types import (
    Appended,
    ConsistencyProof,
    InclusionProof,
    Leaf,
    TreeHead,
)
from clients.integrity_verify import (
    VerificationError,
    verify_consistency,
    verify_inclusion,
    verify_tree_head,
)
from crm import merkle
from crm.lineage import CHUNK_BYTES, DatasetDigest
from crm.v1 import common_pb2, integrity_pb2, integrity_pb2_grpc

__all__ = [
    "Appended",
    "ConsistencyProof",
    "InclusionProof",
    "IntegrityClient",
    "Leaf",
    "TreeHead",
    "VerificationError",
    "verify_consistency",
    "verify_inclusion",
    "verify_tree_head",
]


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
        head = TreeHead.from_proto(response.tree_head)
        hashes = tuple(merkle.leaf_hash(leaf) for leaf in leaves)
        return Appended(response.first_index, len(leaves), head, hashes)

    def append_transactions(
        self, lines: Sequence[common_pb2.TransactionLine], log: str = ""
    ) -> Appended:
        response = self._call(
            self._stub.AppendTransactions,
            integrity_pb2.AppendTransactionsRequest(log=log, transactions=lines),
        )
        head = TreeHead.from_proto(response.tree_head)
        return Appended(response.first_index, len(lines), head, tuple(response.leaf_hashes))

    def tree_head(self, log: str = "") -> TreeHead:
        response = self._call(self._stub.GetTreeHead, integrity_pb2.GetTreeHeadRequest(log=log))
        return TreeHead.from_proto(response.tree_head)

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

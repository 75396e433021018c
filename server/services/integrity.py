"""IntegrityService: dataset hashing and persistent RFC 6962 logs with signed tree heads.

The handlers only translate between protobuf and the log store; the store does the work and
raises server.errors for bad input, so every refusal is INVALID_ARGUMENT with the field named
(or NOT_FOUND for a log that was never appended to, RESOURCE_EXHAUSTED for a new log beyond
--max-integrity-logs) and nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC

import grpc
from google.protobuf import timestamp_pb2

from crm.canonical import CanonicalError, encode_row
from crm.columns import EXPORT_COLUMNS
from crm.lineage import CsvDigester, DatasetFormatError
from crm.v1 import common_pb2, integrity_pb2, integrity_pb2_grpc
from server.config import ServerConfig
from server.errors import MAX_VIOLATIONS, FieldViolation, InvalidArgument
from server.integrity.base import MAX_LEAVES_PER_READ
from server.integrity.records import TreeHead
from server.limits import required_timestamp_violation
from server.stores import open_log_store

# Canonical column -> TransactionLine field, to name the field a bad value came from.
_FIELD_OF_COLUMN = dict(
    zip(
        EXPORT_COLUMNS,
        (
            "invoice",
            "stock_code",
            "description",
            "quantity",
            "invoice_date",
            "price",
            "customer_id",
            "country",
        ),
        strict=True,
    )
)


class IntegrityServicer(integrity_pb2_grpc.IntegrityServiceServicer):
    def __init__(
        self,
        config: ServerConfig,
        namespace: str = "",
        on_transactions: Callable[[str, Sequence[common_pb2.TransactionLine], int], None]
        | None = None,
    ) -> None:
        """`namespace`: the tenant whose logs these are (server.stores picks the backend);
        `on_transactions(log, lines, first_index)` hears of every AppendTransactions stored
        (server.freshness.log_feed)."""
        self.store = open_log_store(config, namespace)
        self.on_transactions = on_transactions
        self._max_append = config.max_request_rows
        # Leaf data a GetLeaves response may carry: the message limit less per-leaf framing.
        self._max_read_bytes = config.max_message_bytes - 4096 - 64 * MAX_LEAVES_PER_READ
        # A leaf no GetLeaves response could carry is never accepted.
        self._max_leaf_bytes = min(config.max_leaf_kib * 1024, self._max_read_bytes)
        self._max_append_bytes = config.max_append_mb * 1024 * 1024

    def close(self) -> None:
        self.store.close()

    def HashDataset(
        self,
        request_iterator: Iterator[integrity_pb2.HashDatasetRequest],
        context: grpc.ServicerContext,
    ) -> integrity_pb2.HashDatasetResponse:
        digester = CsvDigester()
        first = True
        try:
            for request in request_iterator:
                if first and request.format not in (
                    integrity_pb2.DATASET_FORMAT_UNSPECIFIED,
                    integrity_pb2.DATASET_FORMAT_CSV,
                ):
                    raise InvalidArgument.field("format", f"unsupported format {request.format}")
                first = False
                digester.update(request.chunk)
            digest = digester.finish()
        except DatasetFormatError as err:
            raise InvalidArgument.field("chunk", str(err)) from None
        return integrity_pb2.HashDatasetResponse(
            sha256=digest.sha256,
            merkle_root=digest.merkle_root,
            rows=digest.rows,
            bytes=digest.bytes,
        )

    def AppendLeaves(
        self, request: integrity_pb2.AppendLeavesRequest, context: grpc.ServicerContext
    ) -> integrity_pb2.AppendLeavesResponse:
        self._check_count(len(request.leaves), "leaves")
        leaves = list(request.leaves)
        self._check_sizes(leaves, "leaves")
        appended = self.store.append(request.log, leaves)
        return integrity_pb2.AppendLeavesResponse(
            first_index=appended.first_index, tree_head=self._signed(appended.head)
        )

    def AppendTransactions(
        self, request: integrity_pb2.AppendTransactionsRequest, context: grpc.ServicerContext
    ) -> integrity_pb2.AppendTransactionsResponse:
        self._check_count(len(request.transactions), "transactions")
        leaves = encode_lines(request.transactions)
        self._check_sizes(leaves, "transactions")
        appended = self.store.append(request.log, leaves)
        if self.on_transactions is not None:
            self.on_transactions(request.log, request.transactions, appended.first_index)
        return integrity_pb2.AppendTransactionsResponse(
            first_index=appended.first_index,
            tree_head=self._signed(appended.head),
            leaf_hashes=appended.leaf_hashes,
        )

    def GetTreeHead(
        self, request: integrity_pb2.GetTreeHeadRequest, context: grpc.ServicerContext
    ) -> integrity_pb2.GetTreeHeadResponse:
        return integrity_pb2.GetTreeHeadResponse(
            tree_head=self._signed(self.store.tree_head(request.log))
        )

    def GetInclusionProof(
        self, request: integrity_pb2.GetInclusionProofRequest, context: grpc.ServicerContext
    ) -> integrity_pb2.GetInclusionProofResponse:
        which = request.WhichOneof("leaf")
        proof = self.store.inclusion_proof(
            request.log,
            leaf_index=request.leaf_index if which == "leaf_index" else None,
            leaf_hash=request.leaf_hash if which == "leaf_hash" else None,
            tree_size=request.tree_size,
        )
        return integrity_pb2.GetInclusionProofResponse(
            leaf_index=proof.leaf_index,
            tree_size=proof.tree_size,
            leaf_hash=proof.leaf_hash,
            audit_path=proof.audit_path,
            root_hash=proof.root_hash,
        )

    def GetConsistencyProof(
        self, request: integrity_pb2.GetConsistencyProofRequest, context: grpc.ServicerContext
    ) -> integrity_pb2.GetConsistencyProofResponse:
        proof = self.store.consistency_proof(
            request.log, request.first_tree_size, request.second_tree_size
        )
        return integrity_pb2.GetConsistencyProofResponse(
            first_tree_size=proof.first_tree_size,
            second_tree_size=proof.second_tree_size,
            proof=proof.proof,
            first_root_hash=proof.first_root_hash,
            second_root_hash=proof.second_root_hash,
        )

    def GetLeaves(
        self, request: integrity_pb2.GetLeavesRequest, context: grpc.ServicerContext
    ) -> integrity_pb2.GetLeavesResponse:
        leaves = self.store.leaves(request.log, request.start, request.end, self._max_read_bytes)
        return integrity_pb2.GetLeavesResponse(
            leaves=[
                integrity_pb2.Leaf(index=leaf.index, data=leaf.data, leaf_hash=leaf.leaf_hash)
                for leaf in leaves
            ]
        )

    def _check_count(self, count: int, field: str) -> None:
        if count == 0:
            raise InvalidArgument.field(field, "at least one is required")
        if count > self._max_append:
            raise InvalidArgument.field(
                field, f"at most {self._max_append} per call (got {count}); split the append"
            )

    def _check_sizes(self, leaves: Sequence[bytes], field: str) -> None:
        """Every leaf within --max-leaf-kib (and what GetLeaves returns), all of them within
        --max-append-mb; INVALID_ARGUMENT naming each leaf too big, or the whole field."""
        most = self._max_leaf_bytes
        problems = [
            FieldViolation(f"{field}[{i}]", f"{len(leaf)} bytes; a leaf is at most {most} bytes")
            for i, leaf in enumerate(leaves)
            if len(leaf) > most
        ]
        if problems:
            raise InvalidArgument(problems[:MAX_VIOLATIONS])
        total = sum(len(leaf) for leaf in leaves)
        if total > self._max_append_bytes:
            raise InvalidArgument.field(
                field,
                f"{total} bytes of leaves; one append carries at most {self._max_append_bytes}"
                " bytes; split the append",
            )

    def _signed(self, head: TreeHead) -> integrity_pb2.SignedTreeHead:
        seconds, millis = divmod(head.timestamp_ms, 1000)
        return integrity_pb2.SignedTreeHead(
            log=head.log,
            tree_size=head.tree_size,
            root_hash=head.root_hash,
            timestamp=timestamp_pb2.Timestamp(seconds=seconds, nanos=millis * 1_000_000),
            signature=head.signature,
            public_key=self.store.signer.public_key,
        )


def encode_lines(lines: Iterable[common_pb2.TransactionLine]) -> list[bytes]:
    """Canonical leaves of transaction lines; every bad field is reported, none is appended."""
    leaves: list[bytes] = []
    problems: list[FieldViolation] = []
    for i, line in enumerate(lines):
        bad = required_timestamp_violation(line, "invoice_date", f"transactions[{i}]")
        if bad is not None:
            problems.append(bad)
            continue
        when = line.invoice_date.ToDatetime(tzinfo=UTC)
        row = (
            line.invoice,
            line.stock_code,
            line.description,
            line.quantity,
            when,
            line.price,
            line.customer_id,
            line.country,
        )
        try:
            leaves.append(encode_row(row))
        except CanonicalError as err:
            name = _FIELD_OF_COLUMN.get(err.field, err.field)
            problems.append(FieldViolation(f"transactions[{i}].{name}", str(err)))
        if len(problems) >= MAX_VIOLATIONS:
            break
    if problems:
        raise InvalidArgument(problems)
    return leaves

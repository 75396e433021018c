"""TransactionService: converts between crm.v1 transaction messages and server.freshness."""

from __future__ import annotations

import base64
import time

import grpc

from crm.v1 import transactions_pb2, transactions_pb2_grpc
from server.errors import FailedPrecondition, InvalidArgument
from server.freshness.ingest import conflict_error, stored_lines, to_message
from server.freshness.lines import LineConflict
from server.freshness.state import FreshFeatures
from server.limits import timestamp_violation

_TOKEN_PREFIX = "t1:"


def _token(seq: int) -> str:
    return base64.urlsafe_b64encode(f"{_TOKEN_PREFIX}{seq}".encode()).decode()


def _seq(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        text = ""
    number = text.removeprefix(_TOKEN_PREFIX)
    if not text.startswith(_TOKEN_PREFIX) or not number.isdigit() or len(number) > 18:
        raise InvalidArgument.field("page_token", "not a page token from ExportTransactions")
    return int(number)


class TransactionServicer(transactions_pb2_grpc.TransactionServiceServicer):
    def __init__(self, fresh: FreshFeatures, max_rows: int) -> None:
        self.fresh = fresh
        self.max_rows = max_rows

    def IngestTransactions(
        self, request: transactions_pb2.IngestTransactionsRequest, context: grpc.ServicerContext
    ) -> transactions_pb2.IngestTransactionsResponse:
        lines = stored_lines(request.lines, self.max_rows, self.fresh.clock.now(), time.time_ns())
        if self.fresh.snapshot() is None:
            raise FailedPrecondition(
                "the features artifact has no customer history: retrain to ingest lines"
            )
        try:
            appended, changed, as_of_s = self.fresh.ingest(lines)
        except LineConflict as err:
            raise conflict_error(err) from None
        response = transactions_pb2.IngestTransactionsResponse(
            accepted=len(appended.accepted),
            duplicates=len(appended.duplicates),
            customer_ids=changed,
        )
        response.as_of.FromSeconds(int(as_of_s))
        return response

    def ExportTransactions(
        self, request: transactions_pb2.ExportTransactionsRequest, context: grpc.ServicerContext
    ) -> transactions_pb2.ExportTransactionsResponse:
        if request.page_size < 0:
            raise InvalidArgument.field("page_size", "must be >= 0 (0 = the server's limit)")
        since_ns = 0
        if request.HasField("since"):
            if bad := timestamp_violation(request.since, "since"):
                raise InvalidArgument([bad])
            since_ns = request.since.ToNanoseconds()
        size = min(request.page_size or self.max_rows, self.max_rows)
        after = _seq(request.page_token) if request.page_token else 0
        page = self.fresh.store.after(after, size)
        response = transactions_pb2.ExportTransactionsResponse(
            lines=[to_message(line) for _, line in page if line.ingested_at_ns >= since_ns]
        )
        if len(page) == size:
            response.next_page_token = _token(page[-1][0])
        return response

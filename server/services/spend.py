"""SpendService: converts between crm.v1 spend messages and the spend and revenue handlers."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import grpc
import numpy as np

from crm.v1 import spend_pb2, spend_pb2_grpc
from server.dataplane.spend import RevenueHandler, SpendHandler, SpendScores
from server.services.rows import (
    STREAM_WINDOW,
    as_of_ns,
    batch_of,
    model_ref,
    pipelined,
    slots,
    stamp_as_of,
)

Reply = TypeVar("Reply", spend_pb2.PredictSpendResponse, spend_pb2.StreamPredictSpendResponse)


def fill(response: Reply, scores: SpendScores, columnar: bool) -> Reply:
    """The fields unary and streamed replies share, added in place."""
    response.model.CopyFrom(model_ref(scores.model))
    stamp_as_of(response, scores.rows)
    response.currency = scores.currency
    response.horizon_days = scores.horizon_days
    amounts, categories, rows = scores.amounts, scores.categories, scores.rows
    if columnar:
        columns = response.columns
        columns.SetInParent()  # present even with no row (clients test it)
        columns.totals.extend(amounts[:, 0].astype(np.float32).tolist())
        columns.categories.extend(categories)
        columns.category_amounts.extend(amounts[:, 1:].astype(np.float32).reshape(-1).tolist())
        return response
    add = response.predictions.add
    for i, k in slots(rows):
        p = add(index=i, customer_id=rows.customer_ids[i], request_key=rows.request_keys[i])
        if k is None:
            p.error.CopyFrom(rows.errors[i])
            continue
        p.total = float(amounts[k, 0])
        for c, name in enumerate(categories):
            p.categories.add(category=name, amount=float(amounts[k, 1 + c]))
    return response


class SpendServicer(spend_pb2_grpc.SpendServiceServicer):
    def __init__(
        self, spend: SpendHandler, revenue: RevenueHandler, stream_pool: ThreadPoolExecutor
    ) -> None:
        self.spend = spend
        self.revenue = revenue
        self.stream_pool = stream_pool

    def PredictSpend(
        self, request: spend_pb2.PredictSpendRequest, context: grpc.ServicerContext
    ) -> spend_pb2.PredictSpendResponse:
        batch = batch_of(request)
        scores = self.spend.predict(
            request.customers, batch, version=request.model_version,
            timeout=context.time_remaining(), as_of_ns=as_of_ns(request),
        )  # fmt: skip
        return fill(spend_pb2.PredictSpendResponse(), scores, batch is not None)

    def StreamPredictSpend(
        self,
        request_iterator: Iterator[spend_pb2.StreamPredictSpendRequest],
        context: grpc.ServicerContext,
    ) -> Iterator[spend_pb2.StreamPredictSpendResponse]:
        def work(
            request: spend_pb2.StreamPredictSpendRequest,
        ) -> spend_pb2.StreamPredictSpendResponse:
            batch = batch_of(request)
            scores = self.spend.predict(
                request.customers, batch, timeout=context.time_remaining(),
                as_of_ns=as_of_ns(request),
            )  # fmt: skip
            reply = spend_pb2.StreamPredictSpendResponse(sequence=request.sequence)
            return fill(reply, scores, batch is not None)

        return pipelined(request_iterator, work, self.stream_pool, STREAM_WINDOW)

    def PredictInvoiceRevenue(
        self, request: spend_pb2.PredictInvoiceRevenueRequest, context: grpc.ServicerContext
    ) -> spend_pb2.PredictInvoiceRevenueResponse:
        revenue = self.revenue.predict(
            request.lines, version=request.model_version, timeout=context.time_remaining()
        )
        response = spend_pb2.PredictInvoiceRevenueResponse(
            model=model_ref(revenue.model),
            currency=revenue.currency,
            total_expected_net_revenue=float(revenue.expected_net.sum()),
        )
        for i, (gross, net) in enumerate(
            zip(revenue.gross.tolist(), revenue.expected_net.tolist(), strict=True)
        ):
            response.lines.add(index=i, gross_revenue=gross, expected_net_revenue=net)
        return response

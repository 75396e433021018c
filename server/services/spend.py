"""SpendService: next-horizon spend per customer (total and per category), invoice revenue."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import TypeVar

import grpc
import numpy as np

from crm import features as feat
from crm.line_features import line_feature_matrix, line_feature_names
from crm.v1 import common_pb2, spend_pb2, spend_pb2_grpc
from server.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound, Unavailable
from server.inputs import lines_frame
from server.limits import timestamp_violation
from server.services.scoring import ScoringService, batch_of, model_ref, serving_section

PRODUCTS_ARTIFACT = "products"
REVENUE_MODEL = "revenue"


def _line_problems(lines: Sequence[common_pb2.TransactionLine]) -> list[FieldViolation]:
    problems: list[FieldViolation] = []
    for i, line in enumerate(lines):
        path = f"lines[{i}]"
        if not (math.isfinite(line.quantity) and line.quantity > 0):
            problems.append(FieldViolation(f"{path}.quantity", "must be a finite number > 0"))
        if not (math.isfinite(line.price) and line.price > 0):
            problems.append(FieldViolation(f"{path}.price", "must be a finite number > 0"))
        if not line.HasField("invoice_date"):
            problems.append(FieldViolation(f"{path}.invoice_date", "required"))
        elif bad := timestamp_violation(line.invoice_date, f"{path}.invoice_date"):
            problems.append(bad)
        if len(problems) >= 50:
            break
    return problems


Reply = TypeVar("Reply", spend_pb2.PredictSpendResponse, spend_pb2.StreamPredictSpendResponse)


class SpendServicer(spend_pb2_grpc.SpendServiceServicer, ScoringService):
    model_name = "spend"

    def _category_of(self) -> dict[str, str]:
        """StockCode -> category from the product snapshot, for lines that carry none."""
        try:
            products = self.registry.get(PRODUCTS_ARTIFACT)
        except (NotFound, Unavailable):
            return {}
        payload = products.payload
        if payload is None:
            return {}
        return self.cache.get(
            ("category_of", products.version),
            lambda: dict(zip(payload.product_ids, payload.category, strict=True)),
        )

    def PredictInvoiceRevenue(
        self, request: spend_pb2.PredictInvoiceRevenueRequest, context: grpc.ServicerContext
    ) -> spend_pb2.PredictInvoiceRevenueResponse:
        lines = request.lines
        if not lines:
            raise InvalidArgument.field("lines", "at least one line is required")
        if len(lines) > self.resolver.max_rows:
            raise InvalidArgument.field(
                "lines", f"{len(lines)} lines exceed the limit of {self.resolver.max_rows} per call"
            )
        if request.model_version < 0:
            raise InvalidArgument.field("model_version", "must be >= 0 (0 = serving)")
        problems = _line_problems(lines)
        if problems:
            raise InvalidArgument(problems)
        try:
            artifact = self.registry.get(REVENUE_MODEL, request.model_version)
        except NotFound:
            if request.model_version:
                raise
            raise Unavailable(f"model {REVENUE_MODEL!r} is not loaded") from None
        serving = serving_section(artifact)
        categories = [str(c) for c in serving.get("categories", [])]
        if list(artifact.model.feature_names) != line_feature_names(categories):
            raise FailedPrecondition("revenue model features differ from crm.line_features")
        frame = lines_frame(lines)
        matrix = line_feature_matrix(frame, categories, self._category_of())
        expected = np.asarray(self.run(artifact, matrix, context)["revenue"], dtype=np.float64)
        expected = expected.reshape(-1)
        gross = frame[feat.QUANTITY].to_numpy() * frame[feat.PRICE].to_numpy()
        response = spend_pb2.PredictInvoiceRevenueResponse(
            model=model_ref(artifact),
            currency=str(serving.get("currency", "")),
            total_expected_net_revenue=float(expected.sum()),
        )
        for i in range(len(lines)):
            response.lines.add(
                index=i, gross_revenue=float(gross[i]), expected_net_revenue=float(expected[i])
            )
        return response

    def _predict(
        self,
        response: Reply,
        customers: Sequence[common_pb2.CustomerInput],
        batch: common_pb2.FeatureMatrix | None,
        version: int,
        context: grpc.ServicerContext,
    ) -> Reply:
        """Fill the fields unary and streamed spend replies share. Predictions are added in
        place: building them apart and extending the reply copied every one again."""
        if version < 0:
            raise InvalidArgument.field("model_version", "must be >= 0 (0 = serving)")
        artifact = self.model(version)
        serving = serving_section(artifact)
        categories = [str(c) for c in serving.get("categories", [])]
        resolved = self.resolve(artifact, customers, batch, self.snapshot())
        spend = np.zeros((0, 1 + len(categories)), dtype=np.float64)
        if resolved.matrix.shape[0]:
            out = self.score(artifact, resolved, context)
            spend = np.asarray(out["spend"], dtype=np.float64).reshape(resolved.matrix.shape[0], -1)
        response.model.CopyFrom(model_ref(artifact))
        response.currency = str(serving.get("currency", ""))
        response.horizon_days = int(serving.get("horizon_days", 0))
        if batch is not None:
            columns = response.columns
            columns.SetInParent()  # present even with no row (clients test it)
            columns.totals.extend(spend[:, 0].astype(np.float32).tolist())
            columns.categories.extend(categories)
            columns.category_amounts.extend(spend[:, 1:].astype(np.float32).reshape(-1).tolist())
            return response
        position = {int(i): k for k, i in enumerate(resolved.scored)}
        add = response.predictions.add
        for i in range(resolved.n):
            p = add(
                index=i, customer_id=resolved.customer_ids[i], request_key=resolved.request_keys[i]
            )
            k = position.get(i)
            if k is None:
                p.error.CopyFrom(resolved.errors[i])
            else:
                p.total = float(spend[k, 0])
                for c, name in enumerate(categories):
                    p.categories.add(category=name, amount=float(spend[k, 1 + c]))
        return response

    def PredictSpend(
        self, request: spend_pb2.PredictSpendRequest, context: grpc.ServicerContext
    ) -> spend_pb2.PredictSpendResponse:
        return self._predict(
            spend_pb2.PredictSpendResponse(), request.customers, batch_of(request),
            request.model_version, context,
        )  # fmt: skip

    def StreamPredictSpend(
        self,
        request_iterator: Iterator[spend_pb2.StreamPredictSpendRequest],
        context: grpc.ServicerContext,
    ) -> Iterator[spend_pb2.StreamPredictSpendResponse]:
        def work(
            request: spend_pb2.StreamPredictSpendRequest,
        ) -> spend_pb2.StreamPredictSpendResponse:
            return self._predict(
                spend_pb2.StreamPredictSpendResponse(sequence=request.sequence),
                request.customers, batch_of(request), 0, context,
            )  # fmt: skip

        return self.stream(request_iterator, work)

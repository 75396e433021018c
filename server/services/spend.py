"""SpendService: next-horizon spend per customer (total and per category), invoice revenue."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import grpc
import numpy as np

from crm.v1 import common_pb2, spend_pb2, spend_pb2_grpc
from server.errors import InvalidArgument
from server.registry import LoadedArtifact
from server.services.scoring import ScoringService, batch_of, model_ref, serving_section


class SpendServicer(spend_pb2_grpc.SpendServiceServicer, ScoringService):
    model_name = "spend"

    def _predict(
        self,
        customers: Sequence[common_pb2.CustomerInput],
        batch: common_pb2.FeatureMatrix | None,
        version: int,
        context: grpc.ServicerContext,
    ) -> tuple[LoadedArtifact, list[spend_pb2.SpendPrediction], spend_pb2.SpendColumns | None]:
        if version < 0:
            raise InvalidArgument.field("model_version", "must be >= 0 (0 = serving)")
        artifact = self.model(version)
        categories = [str(c) for c in serving_section(artifact).get("categories", [])]
        resolved = self.resolve(artifact, customers, batch)
        spend = np.zeros((0, 1 + len(categories)), dtype=np.float64)
        if resolved.matrix.shape[0]:
            out = self.run(artifact, resolved.matrix, context)
            spend = np.asarray(out["spend"], dtype=np.float64).reshape(resolved.matrix.shape[0], -1)
        if batch is not None:
            columns = spend_pb2.SpendColumns(
                totals=spend[:, 0].astype(np.float32).tolist(),
                categories=categories,
                category_amounts=spend[:, 1:].astype(np.float32).reshape(-1).tolist(),
            )
            return artifact, [], columns
        position = {int(i): k for k, i in enumerate(resolved.scored)}
        predictions: list[spend_pb2.SpendPrediction] = []
        for i in range(resolved.n):
            p = spend_pb2.SpendPrediction(
                index=i, customer_id=resolved.customer_ids[i], request_key=resolved.request_keys[i]
            )
            k = position.get(i)
            if k is None:
                p.error.CopyFrom(resolved.errors[i])
            else:
                p.total = float(spend[k, 0])
                for c, name in enumerate(categories):
                    p.categories.add(category=name, amount=float(spend[k, 1 + c]))
            predictions.append(p)
        return artifact, predictions, None

    def _header(self, artifact: LoadedArtifact) -> tuple[str, int]:
        serving = serving_section(artifact)
        return str(serving.get("currency", "")), int(serving.get("horizon_days", 0))

    def PredictSpend(
        self, request: spend_pb2.PredictSpendRequest, context: grpc.ServicerContext
    ) -> spend_pb2.PredictSpendResponse:
        artifact, predictions, columns = self._predict(
            request.customers, batch_of(request), request.model_version, context
        )
        currency, horizon = self._header(artifact)
        response = spend_pb2.PredictSpendResponse(
            model=model_ref(artifact), currency=currency, horizon_days=horizon,
            predictions=predictions,
        )  # fmt: skip
        if columns is not None:
            response.columns.CopyFrom(columns)
        return response

    def StreamPredictSpend(
        self,
        request_iterator: Iterator[spend_pb2.StreamPredictSpendRequest],
        context: grpc.ServicerContext,
    ) -> Iterator[spend_pb2.StreamPredictSpendResponse]:
        def work(
            request: spend_pb2.StreamPredictSpendRequest,
        ) -> spend_pb2.StreamPredictSpendResponse:
            artifact, predictions, columns = self._predict(
                request.customers, batch_of(request), 0, context
            )
            currency, horizon = self._header(artifact)
            response = spend_pb2.StreamPredictSpendResponse(
                sequence=request.sequence, model=model_ref(artifact), currency=currency,
                horizon_days=horizon, predictions=predictions,
            )  # fmt: skip
            if columns is not None:
                response.columns.CopyFrom(columns)
            return response

        return self.stream(request_iterator, work)

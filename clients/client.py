"""CrmClient: one object a backend imports to call every crm-serving service.

Deadlines by default on every call (clients.calls); UNAVAILABLE retried by gRPC itself
(clients.channel) for idempotent methods only, so an append or a save is never sent twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients.calls import Caller
from clients.campaign import CampaignClient
from clients.channel import open_channel
from clients.integrity import IntegrityClient
from clients.model_types import Catalog, ModelMetadata, ModelSummary, ReloadOutcome
from clients.scoring import ScoringClient
from clients.scoring_types import Customer, Line, RevenueForecast, Scored
from crm.v1 import (
    campaign_pb2_grpc,
    churn_pb2_grpc,
    integrity_pb2_grpc,
    model_pb2,
    model_pb2_grpc,
    segmentation_pb2_grpc,
    spend_pb2_grpc,
)


class CrmClient:
    """Every service on one channel; `call` (a clients.calls.Caller) is shared by all of them.

    TLS: `ca` (the CA bundle to trust), `cert` and `key` (a client certificate, for mTLS);
    `token` is sent as `authorization: Bearer <token>` on every call (clients.channel)."""

    def __init__(
        self,
        target: str = "localhost:50051",
        *,
        timeout: float = 10.0,
        channel: grpc.Channel | None = None,
        max_message_mb: int = 64,
        ca: Path | None = None,
        cert: Path | None = None,
        key: Path | None = None,
        token: str | None = None,
        server_name: str | None = None,
    ) -> None:
        self.target = target
        self.call = Caller(timeout)
        self._own_channel = channel is None
        self.channel = channel or open_channel(
            target,
            max_message_mb,
            ca=ca,
            cert=cert,
            key=key,
            token=token,
            server_name=server_name,
        )
        self.health_stub = health_pb2_grpc.HealthStub(self.channel)
        self.models_stub = model_pb2_grpc.ModelServiceStub(self.channel)
        self.segmentation_stub = segmentation_pb2_grpc.SegmentationServiceStub(self.channel)
        self.churn_stub = churn_pb2_grpc.ChurnServiceStub(self.channel)
        self.spend_stub = spend_pb2_grpc.SpendServiceStub(self.channel)
        self.integrity_stub = integrity_pb2_grpc.IntegrityServiceStub(self.channel)
        self.campaign_stub = campaign_pb2_grpc.CampaignServiceStub(self.channel)
        self.scoring = ScoringClient(self.channel, call=self.call)
        self.campaign = CampaignClient(self.channel, call=self.call)
        self.integrity = IntegrityClient(self.channel, call=self.call)

    @property
    def timeout(self) -> float:
        """The default deadline of every call, in seconds (set it to change them all)."""
        return self.call.timeout

    @timeout.setter
    def timeout(self, seconds: float) -> None:
        self.call.timeout = seconds

    def close(self) -> None:
        if self._own_channel:
            self.channel.close()

    def __enter__(self) -> CrmClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- health and models -----------------------------------------------------------------
    def health(self, service: str = "") -> str:
        """'SERVING', 'NOT_SERVING', ...; raises CrmError(NOT_FOUND) for an unknown service."""
        response = self.call(self.health_stub.Check, health_pb2.HealthCheckRequest(service=service))
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)

    def catalog(self) -> Catalog:
        """The models and, apart, the data artifacts (snapshots) the server has loaded."""
        response = self.call(self.models_stub.ListModels, model_pb2.ListModelsRequest())
        return Catalog.from_proto(response)

    def list_models(self) -> list[ModelSummary]:
        """The ONNX models alone (data artifacts: `catalog().data_artifacts`)."""
        return list(self.catalog().models)

    def model_metadata(self, name: str, version: int = 0) -> ModelMetadata:
        response = self.call(
            self.models_stub.GetModelMetadata,
            model_pb2.GetModelMetadataRequest(name=name, version=version),
        )
        summary = ModelSummary.from_proto(response.info)
        return ModelMetadata(summary, json_format.MessageToDict(response.manifest))

    def reload_models(self) -> list[ReloadOutcome]:
        response = self.call(self.models_stub.ReloadModels, model_pb2.ReloadModelsRequest())
        return [ReloadOutcome.from_proto(r) for r in response.results]

    def set_default_version(self, name: str, version: int) -> ModelSummary:
        """Serve `version` of `name` to calls that name no version, until cleared (admin)."""
        response = self.call(
            self.models_stub.SetDefaultVersion,
            model_pb2.SetDefaultVersionRequest(name=name, version=version),
        )
        return ModelSummary.from_proto(response.info)

    def clear_default_version(self, name: str) -> ModelSummary:
        """Drop a default set by set_default_version: `name` serves its newest version (admin)."""
        response = self.call(
            self.models_stub.ClearDefaultVersion, model_pb2.ClearDefaultVersionRequest(name=name)
        )
        return ModelSummary.from_proto(response.info)

    # -- scoring (see clients.scoring for the result types) ---------------------------------
    def predict_churn(self, customers: Iterable[Customer], include_drivers: bool = False) -> Scored:
        return self.scoring.predict_churn(customers, include_drivers)

    def predict_spend(self, customers: Iterable[Customer]) -> Scored:
        return self.scoring.predict_spend(customers)

    def assign_segments(self, customers: Iterable[Customer]) -> Scored:
        return self.scoring.assign_segments(customers)

    def predict_invoice_revenue(self, lines: Iterable[Line]) -> RevenueForecast:
        return self.scoring.predict_invoice_revenue(lines)

    def score_frame(self, kind: str, frame: Any, batch_rows: int = 1000) -> Any:
        """Bulk-score a pandas DataFrame ("churn" | "spend" | "segments"), in row order."""
        return self.scoring.stream_frame(kind, frame, batch_rows)

"""CrmClient: one object a backend imports to call every crm-serving service.

Deadlines by default on every call; UNAVAILABLE retried by gRPC itself (service config) for
idempotent methods only, so an append or a save is never sent twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import grpc
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients.campaign import CampaignClient
from clients.errors import CrmError
from clients.integrity import IntegrityClient
from clients.scoring import Customer, Line, RevenueForecast, Scored, ScoringClient
from crm.v1 import (
    campaign_pb2_grpc,
    churn_pb2_grpc,
    integrity_pb2_grpc,
    model_pb2,
    model_pb2_grpc,
    segmentation_pb2_grpc,
    spend_pb2_grpc,
)

T = TypeVar("T")

# Never retried automatically: calls that write.
NON_IDEMPOTENT = {
    ("crm.v1.IntegrityService", "AppendLeaves"),
    ("crm.v1.IntegrityService", "AppendTransactions"),
    ("crm.v1.CampaignService", "SaveCampaign"),
}
RETRIED_SERVICES = (
    "crm.v1.SegmentationService",
    "crm.v1.ChurnService",
    "crm.v1.SpendService",
    "crm.v1.IntegrityService",
    "crm.v1.CampaignService",
    "crm.v1.ModelService",
    "grpc.health.v1.Health",
)


def service_config(max_attempts: int = 4) -> str:
    """gRPC service config: retry UNAVAILABLE with backoff, except for writes."""
    retry = {
        "maxAttempts": max_attempts,
        "initialBackoff": "0.1s",
        "maxBackoff": "2s",
        "backoffMultiplier": 2,
        "retryableStatusCodes": ["UNAVAILABLE"],
    }
    return json.dumps(
        {
            "methodConfig": [
                {"name": [{"service": s, "method": m} for s, m in sorted(NON_IDEMPOTENT)]},
                {"name": [{"service": s} for s in RETRIED_SERVICES], "retryPolicy": retry},
            ]
        }
    )


@dataclass(frozen=True)
class ModelSummary:
    name: str
    version: int
    loaded_versions: tuple[int, ...]
    onnx_sha256: str
    created_at: datetime | None
    loaded_at: datetime | None
    feature_names: tuple[str, ...]


@dataclass(frozen=True)
class ModelMetadata:
    summary: ModelSummary
    manifest: dict[str, Any]


@dataclass(frozen=True)
class ReloadOutcome:
    name: str
    version: int
    outcome: str  # "LOADED" | "UNCHANGED" | "REFUSED"
    reason: str


def _summary(info: model_pb2.ModelInfo) -> ModelSummary:
    return ModelSummary(
        name=info.name,
        version=info.version,
        loaded_versions=tuple(info.loaded_versions),
        onnx_sha256=info.onnx_sha256,
        created_at=info.created_at.ToDatetime() if info.HasField("created_at") else None,
        loaded_at=info.loaded_at.ToDatetime() if info.HasField("loaded_at") else None,
        feature_names=tuple(info.feature_names),
    )


class CrmClient:
    def __init__(
        self,
        target: str = "localhost:50051",
        *,
        timeout: float = 10.0,
        channel: grpc.Channel | None = None,
        max_message_mb: int = 64,
    ) -> None:
        self.target = target
        self.timeout = timeout
        self._own_channel = channel is None
        self.channel = channel or grpc.insecure_channel(
            target,
            options=[
                ("grpc.service_config", service_config()),
                ("grpc.enable_retries", 1),
                ("grpc.max_receive_message_length", max_message_mb * 1024 * 1024),
                ("grpc.max_send_message_length", max_message_mb * 1024 * 1024),
            ],
        )
        self.health_stub = health_pb2_grpc.HealthStub(self.channel)
        self.models_stub = model_pb2_grpc.ModelServiceStub(self.channel)
        self.segmentation_stub = segmentation_pb2_grpc.SegmentationServiceStub(self.channel)
        self.churn_stub = churn_pb2_grpc.ChurnServiceStub(self.channel)
        self.spend_stub = spend_pb2_grpc.SpendServiceStub(self.channel)
        self.integrity_stub = integrity_pb2_grpc.IntegrityServiceStub(self.channel)
        self.campaign_stub = campaign_pb2_grpc.CampaignServiceStub(self.channel)
        self.scoring = ScoringClient(self, self.call, timeout)
        self.campaign = CampaignClient(self.channel, timeout)
        self.integrity = IntegrityClient(self.channel, timeout)

    # -- plumbing --------------------------------------------------------------------------
    def call(self, method: Callable[..., T], request: Any, timeout: float | None = None) -> T:
        """Invoke a unary stub method with the default deadline; raise CrmError on failure."""
        try:
            return method(request, timeout=self.timeout if timeout is None else timeout)
        except grpc.RpcError as err:
            raise CrmError.from_rpc_error(err) from None

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

    def list_models(self) -> list[ModelSummary]:
        response = self.call(self.models_stub.ListModels, model_pb2.ListModelsRequest())
        return [_summary(m) for m in response.models]

    def model_metadata(self, name: str, version: int = 0) -> ModelMetadata:
        response = self.call(
            self.models_stub.GetModelMetadata,
            model_pb2.GetModelMetadataRequest(name=name, version=version),
        )
        return ModelMetadata(_summary(response.info), json_format.MessageToDict(response.manifest))

    def reload_models(self) -> list[ReloadOutcome]:
        response = self.call(self.models_stub.ReloadModels, model_pb2.ReloadModelsRequest())
        return [
            ReloadOutcome(
                r.name,
                r.version,
                model_pb2.ReloadOutcome.Name(r.outcome).removeprefix("RELOAD_OUTCOME_"),
                r.reason,
            )
            for r in response.results
        ]

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

"""The channel a CrmClient opens: retries by gRPC itself (service config) and message limits.

UNAVAILABLE is retried with backoff for idempotent methods only, so an append or a save is
never sent twice.
"""

from __future__ import annotations

import json

import grpc

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


def open_channel(target: str, max_message_mb: int = 64) -> grpc.Channel:
    """An insecure channel to `target` with the retry policy and `max_message_mb` each way."""
    return grpc.insecure_channel(
        target,
        options=[
            ("grpc.service_config", service_config()),
            ("grpc.enable_retries", 1),
            ("grpc.max_receive_message_length", max_message_mb * 1024 * 1024),
            ("grpc.max_send_message_length", max_message_mb * 1024 * 1024),
        ],
    )

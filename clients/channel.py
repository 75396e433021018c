"""The channel a CrmClient opens: retries by gRPC itself (service config) and message limits.

UNAVAILABLE is retried with backoff for idempotent methods only, so an append or a save is
never sent twice. A target naming several replicas (clients.targets) balances calls round robin.
"""

from __future__ import annotations

import json

import grpc

from clients.targets import balanced_target

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


def service_config(max_attempts: int = 4, balanced: bool = False) -> str:
    """gRPC service config: retry UNAVAILABLE with backoff, except for writes; with `balanced`,
    round robin over the target's addresses (a retry goes to the next replica)."""
    retry = {
        "maxAttempts": max_attempts,
        "initialBackoff": "0.1s",
        "maxBackoff": "2s",
        "backoffMultiplier": 2,
        "retryableStatusCodes": ["UNAVAILABLE"],
    }
    config: dict[str, object] = {
        "methodConfig": [
            {"name": [{"service": s, "method": m} for s, m in sorted(NON_IDEMPOTENT)]},
            {"name": [{"service": s} for s in RETRIED_SERVICES], "retryPolicy": retry},
        ]
    }
    if balanced:
        config["loadBalancingConfig"] = [{"round_robin": {}}]
    return json.dumps(config)


def open_channel(target: str, max_message_mb: int = 64) -> grpc.Channel:
    """An insecure channel to `target` with the retry policy and `max_message_mb` each way;
    `target` may name several replicas ('h1:p,h2:p' or 'dns:///name:port')."""
    target, balanced = balanced_target(target)
    return grpc.insecure_channel(
        target,
        options=[
            ("grpc.service_config", service_config(balanced=balanced)),
            ("grpc.enable_retries", 1),
            ("grpc.max_receive_message_length", max_message_mb * 1024 * 1024),
            ("grpc.max_send_message_length", max_message_mb * 1024 * 1024),
        ],
    )

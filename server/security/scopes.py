"""Which scope each RPC needs: the one table, written from the .proto files under protos/.

A token grants scopes (`scope`/`scp` claims); a call needs the scope its method maps to here.
Health and the Open Inference Protocol's ServerLive/ServerReady are open (Kubernetes gRPC
probes send no metadata); reflection needs `admin` unless the
server runs with --open-reflection. A method of a registered service that is missing here is
refused for everyone (`UNLISTED`): a new RPC stays closed until someone decides its scope, and a
test checks every method of every registered service is listed.
"""

from __future__ import annotations

from collections.abc import Mapping

SCORE = "score"
ALERTS = "alerts"
CAMPAIGN_READ = "campaign:read"
CAMPAIGN_WRITE = "campaign:write"
INTEGRITY_READ = "integrity:read"
INTEGRITY_WRITE = "integrity:write"
TRANSACTIONS_READ = "transactions:read"
TRANSACTIONS_WRITE = "transactions:write"
ADMIN = "admin"
ALL = "*"  # a token scope that grants every scope
OPEN = ""  # needs no credentials at all
REFLECTION = "reflection"  # `admin`, or OPEN with --open-reflection (`required_scope`)
UNLISTED = "unlisted"  # not in the table: no token grants it, `*` included

# Scopes whose calls change state or reveal the server's internals: each call is audited.
AUDITED = frozenset({CAMPAIGN_WRITE, INTEGRITY_WRITE, TRANSACTIONS_WRITE, ADMIN})

SCOPE_OF: Mapping[str, str] = {
    # segmentation.proto
    "/crm.v1.SegmentationService/AssignSegments": SCORE,
    "/crm.v1.SegmentationService/GetSegmentSummary": SCORE,
    # churn.proto: WatchChurnAlerts streams other callers' customers, so a scope of its own
    "/crm.v1.ChurnService/PredictChurn": SCORE,
    "/crm.v1.ChurnService/StreamPredictChurn": SCORE,
    "/crm.v1.ChurnService/WatchChurnAlerts": ALERTS,
    "/crm.v1.ChurnService/GetChurnStats": SCORE,
    # spend.proto
    "/crm.v1.SpendService/PredictSpend": SCORE,
    "/crm.v1.SpendService/StreamPredictSpend": SCORE,
    "/crm.v1.SpendService/PredictInvoiceRevenue": SCORE,
    # integrity.proto: HashDataset stores nothing (it hashes what the caller sends)
    "/crm.v1.IntegrityService/HashDataset": INTEGRITY_READ,
    "/crm.v1.IntegrityService/AppendLeaves": INTEGRITY_WRITE,
    "/crm.v1.IntegrityService/AppendTransactions": INTEGRITY_WRITE,
    "/crm.v1.IntegrityService/GetTreeHead": INTEGRITY_READ,
    "/crm.v1.IntegrityService/GetInclusionProof": INTEGRITY_READ,
    "/crm.v1.IntegrityService/GetConsistencyProof": INTEGRITY_READ,
    "/crm.v1.IntegrityService/GetLeaves": INTEGRITY_READ,
    # transactions.proto: ingested lines change every caller's scores; the export hands out
    # customers' purchase lines
    "/crm.v1.TransactionService/IngestTransactions": TRANSACTIONS_WRITE,
    "/crm.v1.TransactionService/ExportTransactions": TRANSACTIONS_READ,
    # campaign.proto: forecasts, plans and drafts store nothing
    "/crm.v1.CampaignService/ForecastDemand": CAMPAIGN_READ,
    "/crm.v1.CampaignService/PlanCampaigns": CAMPAIGN_READ,
    "/crm.v1.CampaignService/DraftMessages": CAMPAIGN_READ,
    "/crm.v1.CampaignService/SaveCampaign": CAMPAIGN_WRITE,
    "/crm.v1.CampaignService/ListCampaigns": CAMPAIGN_READ,
    # model.proto: which versions serve is what a scoring client pins against; the full
    # manifest (training metrics, data lineage, file hashes), reloads and defaults are the operator's
    "/crm.v1.ModelService/ListModels": SCORE,
    "/crm.v1.ModelService/GetModelMetadata": ADMIN,
    "/crm.v1.ModelService/ReloadModels": ADMIN,
    "/crm.v1.ModelService/SetDefaultVersion": ADMIN,
    "/crm.v1.ModelService/ClearDefaultVersion": ADMIN,
    # inference.GRPCInferenceService (Open Inference Protocol): liveness and readiness are
    # probes like health; metadata and inference are what scoring clients call
    "/inference.GRPCInferenceService/ServerLive": OPEN,
    "/inference.GRPCInferenceService/ServerReady": OPEN,
    "/inference.GRPCInferenceService/ServerMetadata": SCORE,
    "/inference.GRPCInferenceService/ModelReady": SCORE,
    "/inference.GRPCInferenceService/ModelMetadata": SCORE,
    "/inference.GRPCInferenceService/ModelInfer": SCORE,
    # grpc.health.v1
    "/grpc.health.v1.Health/Check": OPEN,
    "/grpc.health.v1.Health/List": OPEN,
    "/grpc.health.v1.Health/Watch": OPEN,
    # server reflection, both protocol versions (server.transport.reflection)
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": REFLECTION,
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": REFLECTION,
}


def required_scope(path: str, open_reflection: bool) -> str:
    """The scope a call of `path` needs: OPEN, UNLISTED, or a scope name."""
    scope = SCOPE_OF.get(path, UNLISTED)
    if scope == REFLECTION:
        return OPEN if open_reflection else ADMIN
    return scope


def grants(scopes: frozenset[str], needed: str) -> bool:
    """Whether a principal with `scopes` may make a call that needs `needed`."""
    if needed == UNLISTED:
        return False
    return needed == OPEN or ALL in scopes or needed in scopes

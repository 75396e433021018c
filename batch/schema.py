"""The output's columns, and which model and version produced each (Arrow field metadata,
plus one JSON map in the schema metadata that Parquet readers show without pyarrow)."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pyarrow as pa

from batch.plane import BatchPlane
from server.models.artifact import LoadedArtifact

ID, ERROR = "customer_id", "error"
CHURN = ("churn_probability", "churn_risk", "churn_recommendations")
SPEND_TOTAL = "spend_total"
SPEND_PREFIX = "spend_"
SEGMENT = ("segment", "segment_action", "cluster_id")
RFM = ("recency_score", "frequency_score", "monetary_score")
MODELS_KEY = b"crm.models"


def output_schema(plane: BatchPlane, extra: Mapping[str, str] | None = None) -> pa.Schema:
    """Every output column, typed; model columns carry `crm.model` / `crm.model_version`."""
    churn, spend, seg = (plane.model(n) for n in ("churn", "spend", "segmentation"))

    def by(artifact: LoadedArtifact, name: str, kind: pa.DataType) -> pa.Field:
        meta = {"crm.model": artifact.name, "crm.model_version": str(artifact.version)}
        return pa.field(name, kind, metadata=meta)

    fields = [
        pa.field(ID, pa.string()),
        pa.field(ERROR, pa.string()),
        by(churn, CHURN[0], pa.float64()),
        by(churn, CHURN[1], pa.string()),
        by(churn, CHURN[2], pa.string()),
        by(spend, SPEND_TOTAL, pa.float64()),
        *(by(spend, spend_column(c), pa.float64()) for c in spend.spec.categories),
        by(seg, SEGMENT[0], pa.string()),
        by(seg, SEGMENT[1], pa.string()),
        by(seg, SEGMENT[2], pa.int32()),
        *(by(seg, name, pa.int8()) for name in RFM),
    ]
    models = {
        f.name: f"{f.metadata[b'crm.model'].decode()}:{f.metadata[b'crm.model_version'].decode()}"
        for f in fields
        if f.metadata
    }
    meta = {MODELS_KEY: json.dumps(models).encode()}
    meta.update({f"crm.{k}".encode(): v.encode() for k, v in (extra or {}).items()})
    return pa.schema(fields, metadata=meta)


def spend_column(category: str) -> str:
    return f"{SPEND_PREFIX}{category}"


def models_of(schema: pa.Schema) -> dict[str, str]:
    """Column -> "model:version", as written."""
    return json.loads(schema.metadata[MODELS_KEY])

"""SegmentationService: RFM scores, named segments and recommended actions."""

from __future__ import annotations

import contextlib
from typing import Any

import grpc
import numpy as np

from crm import features as feat
from crm.v1 import segmentation_pb2, segmentation_pb2_grpc
from server.errors import FailedPrecondition, InvalidArgument
from server.registry import LoadedArtifact
from server.services.scoring import ScoringService, batch_of, model_ref, serving_section

SEGMENTS = {
    "VIP": segmentation_pb2.SEGMENT_VIP,
    "Loyal": segmentation_pb2.SEGMENT_LOYAL,
    "Regular": segmentation_pb2.SEGMENT_REGULAR,
    "New": segmentation_pb2.SEGMENT_NEW,
    "At-Risk": segmentation_pb2.SEGMENT_AT_RISK,
    "Lost": segmentation_pb2.SEGMENT_LOST,
}
RFM = ("recency_days", "frequency", "monetary")


def segment_table(artifact: LoadedArtifact) -> dict[int, tuple[str, str]]:
    """Cluster id -> (segment display name, recommended action), from the manifest."""
    raw: dict[str, Any] = serving_section(artifact).get("segments") or {}
    return {int(k): (str(v["segment"]), str(v.get("action", ""))) for k, v in raw.items()}


def _rfm_columns(artifact: LoadedArtifact) -> list[int]:
    names = artifact.model.feature_names
    missing = [n for n in RFM if n not in names]
    if missing:
        raise FailedPrecondition(f"segmentation model lacks RFM features {missing}")
    return [names.index(n) for n in RFM]


def _columns(
    clusters: np.ndarray,
    scores: tuple[np.ndarray, np.ndarray, np.ndarray],
    table: dict[int, tuple[str, str]],
) -> segmentation_pb2.SegmentColumns:
    """The columnar reply: every row of a columnar request is scored (a bad value fails the
    whole request), so the columns are the model outputs as they are."""
    lookup = np.zeros(max([*table, int(clusters.max(initial=0))]) + 1, dtype=np.int32)
    for cluster, (name, _) in table.items():
        lookup[cluster] = SEGMENTS.get(name, segmentation_pb2.SEGMENT_UNSPECIFIED)
    recency, frequency, monetary = (np.asarray(s, dtype=np.int32).tolist() for s in scores)
    return segmentation_pb2.SegmentColumns(
        segments=lookup[clusters].tolist(),
        cluster_ids=clusters.astype(np.int32).tolist(),
        recency_scores=recency,
        frequency_scores=frequency,
        monetary_scores=monetary,
        legend=[
            segmentation_pb2.SegmentLegend(
                cluster_id=cluster,
                segment=int(lookup[cluster]),
                segment_name=name,
                recommended_action=action,
            )
            for cluster, (name, action) in sorted(table.items())
        ],
    )


class SegmentationServicer(segmentation_pb2_grpc.SegmentationServiceServicer, ScoringService):
    model_name = "segmentation"

    def AssignSegments(
        self, request: segmentation_pb2.AssignSegmentsRequest, context: grpc.ServicerContext
    ) -> segmentation_pb2.AssignSegmentsResponse:
        if request.model_version < 0:
            raise InvalidArgument.field("model_version", "must be >= 0 (0 = serving)")
        artifact = self.model(request.model_version)
        batch = batch_of(request)
        resolved = self.resolve(artifact, request.customers, batch, self.snapshot())
        table = segment_table(artifact)
        clusters = np.zeros(0, dtype=np.int64)
        scores = (clusters, clusters, clusters)
        if resolved.matrix.shape[0]:
            clusters = np.asarray(
                self.score(artifact, resolved, context)["cluster"], dtype=np.int64
            ).reshape(-1)
            r, f, m = (resolved.matrix[:, c] for c in _rfm_columns(artifact))
            scores = feat.rfm_scores(r, f, m, serving_section(artifact)["rfm_edges"])
        response = segmentation_pb2.AssignSegmentsResponse(model=model_ref(artifact))
        if batch is not None:
            response.columns.CopyFrom(_columns(clusters, scores, table))
            return response
        position = {int(i): k for k, i in enumerate(resolved.scored)}
        for i in range(resolved.n):
            a = response.assignments.add(
                index=i, customer_id=resolved.customer_ids[i], request_key=resolved.request_keys[i]
            )
            k = position.get(i)
            if k is None:
                a.error.CopyFrom(resolved.errors[i])
                continue
            name, action = table.get(int(clusters[k]), ("", ""))
            a.cluster_id = int(clusters[k])
            a.segment = SEGMENTS.get(name, segmentation_pb2.SEGMENT_UNSPECIFIED)
            a.segment_name = name
            a.recommended_action = action
            a.recency_score, a.frequency_score, a.monetary_score = (int(s[k]) for s in scores)
        return response

    def GetSegmentSummary(
        self, request: segmentation_pb2.GetSegmentSummaryRequest, context: grpc.ServicerContext
    ) -> segmentation_pb2.GetSegmentSummaryResponse:
        if request.model_version < 0:
            raise InvalidArgument.field("model_version", "must be >= 0 (0 = serving)")
        artifact = self.model(request.model_version)
        scored = self.snapshot_outputs(artifact)
        if scored is None:
            raise FailedPrecondition("no customer feature snapshot is loaded to summarise")
        snapshot, out = scored
        clusters = np.asarray(out["cluster"], dtype=np.int64).reshape(-1)
        rfm = snapshot.matrix(list(RFM)).astype(np.float64)
        table = segment_table(artifact)
        total = len(clusters)
        response = segmentation_pb2.GetSegmentSummaryResponse(
            model=model_ref(artifact),
            total_customers=total,
            currency=str(serving_section(artifact).get("currency", "")),
        )
        if snapshot.as_of:
            # a snapshot whose as-of does not parse simply leaves the field unset
            with contextlib.suppress(ValueError):
                response.snapshot_as_of.FromJsonString(
                    snapshot.as_of if snapshot.as_of.endswith("Z") else snapshot.as_of + "Z"
                )
        ids, counts = np.unique(clusters, return_counts=True)
        for cluster, count in sorted(zip(ids, counts, strict=True), key=lambda t: (-t[1], t[0])):
            members = clusters == cluster
            name, action = table.get(int(cluster), ("", ""))
            response.segments.add(
                segment=SEGMENTS.get(name, segmentation_pb2.SEGMENT_UNSPECIFIED),
                segment_name=name,
                cluster_id=int(cluster),
                customers=int(count),
                share=float(count) / total,
                mean_recency_days=float(rfm[members, 0].mean()),
                mean_frequency=float(rfm[members, 1].mean()),
                mean_monetary=float(rfm[members, 2].mean()),
                recommended_action=action,
            )
        return response

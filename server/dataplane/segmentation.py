"""The segmentation handler: cluster, named segment, action and RFM scores; segment summary."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from crm import features as feat
from crm.v1 import common_pb2
from server.dataplane.base import ModelId, ScoringHandler
from server.dataplane.inputs import Resolved
from server.errors import FailedPrecondition
from server.models.specs import RFM, Segment, SegmentationSpec


@dataclass(frozen=True)
class Segments:
    """Row k of the arrays is request row `rows.scored[k]`."""

    model: ModelId
    spec: SegmentationSpec  # names and actions of the clusters
    rows: Resolved
    clusters: np.ndarray  # int64 [k]
    recency: np.ndarray  # RFM scores 1..5, int64 [k] each
    frequency: np.ndarray
    monetary: np.ndarray


@dataclass(frozen=True)
class SegmentShare:
    cluster_id: int
    segment: Segment
    customers: int
    share: float
    mean_recency_days: float
    mean_frequency: float
    mean_monetary: float


@dataclass(frozen=True)
class SegmentSummary:
    model: ModelId
    currency: str
    total_customers: int
    snapshot_as_of: str  # ISO 8601 as training wrote it; empty when unknown
    segments: list[SegmentShare]  # largest first


class SegmentationHandler(ScoringHandler):
    model_name = "segmentation"

    def assign(
        self,
        customers: Sequence[common_pb2.CustomerInput],
        batch: common_pb2.FeatureMatrix | None,
        *,
        version: int = 0,
        timeout: float | None = None,
        as_of_ns: int | None = None,
    ) -> Segments:
        with self.plane.counted():
            artifact = self.model(version)
            spec: SegmentationSpec = artifact.spec
            by_id = self.plane.snapshot_at(customers, as_of_ns)  # as of now unless given
            rows = self.resolve(artifact, customers, batch, by_id)
            out = self.score(artifact, rows, timeout)
            clusters = np.asarray(out.get("cluster", ()), dtype=np.int64).reshape(-1)
            r, f, m = (rows.matrix[:, c] for c in spec.rfm_columns)
            recency, frequency, monetary = feat.rfm_scores(r, f, m, spec.rfm_edges)
            return Segments(
                ModelId.of(artifact), spec, rows, clusters, recency, frequency, monetary
            )

    def summary(self, version: int = 0) -> SegmentSummary:
        artifact = self.model(version)
        spec: SegmentationSpec = artifact.spec
        scored = self.snapshot_outputs(artifact)
        if scored is None:
            raise FailedPrecondition("no customer feature snapshot is loaded to summarise")
        snapshot, out = scored
        clusters = np.asarray(out["cluster"], dtype=np.int64).reshape(-1)
        rfm = snapshot.matrix(list(RFM)).astype(np.float64)
        total = len(clusters)
        ids, counts = np.unique(clusters, return_counts=True)
        shares = []
        for cluster, count in sorted(zip(ids, counts, strict=True), key=lambda t: (-t[1], t[0])):
            members = clusters == cluster
            shares.append(
                SegmentShare(
                    int(cluster),
                    spec.segment(int(cluster)),
                    int(count),
                    float(count) / total,
                    float(rfm[members, 0].mean()),
                    float(rfm[members, 1].mean()),
                    float(rfm[members, 2].mean()),
                )
            )
        return SegmentSummary(
            ModelId.of(artifact), spec.currency, total, snapshot.as_of or "", shares
        )

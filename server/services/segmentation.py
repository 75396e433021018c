"""SegmentationService: converts between crm.v1 segmentation messages and its handler."""

from __future__ import annotations

import contextlib

import grpc
import numpy as np

from crm.v1 import segmentation_pb2, segmentation_pb2_grpc
from server.campaign.types import Segment
from server.dataplane.segmentation import SegmentationHandler, Segments
from server.models.specs import SegmentationSpec
from server.services.rows import as_of_ns, batch_of, model_ref, slots, stamp_as_of


def segment_enum(name: str) -> int:
    """The crm.v1.Segment of a display name (server.campaign.types.Segment has its numbers)."""
    return int(Segment.named(name))


def _columns(s: Segments) -> segmentation_pb2.SegmentColumns:
    """The columnar reply: every row of a columnar request is scored (a bad value fails the
    whole request), so the columns are the model outputs as they are."""
    table = s.spec.segments
    lookup = np.zeros(max([*table, int(s.clusters.max(initial=0))]) + 1, dtype=np.int32)
    for cluster, segment in table.items():
        lookup[cluster] = segment_enum(segment.name)
    recency, frequency, monetary = (
        np.asarray(x, dtype=np.int32).tolist() for x in (s.recency, s.frequency, s.monetary)
    )
    return segmentation_pb2.SegmentColumns(
        segments=lookup[s.clusters].tolist(),
        cluster_ids=s.clusters.astype(np.int32).tolist(),
        recency_scores=recency,
        frequency_scores=frequency,
        monetary_scores=monetary,
        legend=_legend(s.spec, lookup),
    )


def _legend(spec: SegmentationSpec, lookup: np.ndarray) -> list[segmentation_pb2.SegmentLegend]:
    return [
        segmentation_pb2.SegmentLegend(
            cluster_id=cluster,
            segment=int(lookup[cluster]),
            segment_name=segment.name,
            recommended_action=segment.action,
        )
        for cluster, segment in sorted(spec.segments.items())
    ]


class SegmentationServicer(segmentation_pb2_grpc.SegmentationServiceServicer):
    def __init__(self, handler: SegmentationHandler) -> None:
        self.handler = handler

    def AssignSegments(
        self, request: segmentation_pb2.AssignSegmentsRequest, context: grpc.ServicerContext
    ) -> segmentation_pb2.AssignSegmentsResponse:
        batch = batch_of(request)
        s = self.handler.assign(
            request.customers, batch, version=request.model_version,
            timeout=context.time_remaining(), as_of_ns=as_of_ns(request),
        )  # fmt: skip
        response = segmentation_pb2.AssignSegmentsResponse(model=model_ref(s.model))
        stamp_as_of(response, s.rows)
        if batch is not None:
            response.columns.CopyFrom(_columns(s))
            return response
        rows, spec = s.rows, s.spec
        clusters = s.clusters.tolist()
        recency, frequency, monetary = s.recency.tolist(), s.frequency.tolist(), s.monetary.tolist()
        for i, k in slots(rows):
            a = response.assignments.add(
                index=i, customer_id=rows.customer_ids[i], request_key=rows.request_keys[i]
            )
            if k is None:
                a.error.CopyFrom(rows.errors[i])
                continue
            segment = spec.segment(clusters[k])
            a.cluster_id = clusters[k]
            a.segment = segment_enum(segment.name)
            a.segment_name = segment.name
            a.recommended_action = segment.action
            a.recency_score, a.frequency_score, a.monetary_score = (
                recency[k],
                frequency[k],
                monetary[k],
            )
        return response

    def GetSegmentSummary(
        self, request: segmentation_pb2.GetSegmentSummaryRequest, context: grpc.ServicerContext
    ) -> segmentation_pb2.GetSegmentSummaryResponse:
        summary = self.handler.summary(request.model_version)
        response = segmentation_pb2.GetSegmentSummaryResponse(
            model=model_ref(summary.model),
            total_customers=summary.total_customers,
            currency=summary.currency,
        )
        as_of = summary.snapshot_as_of
        if as_of:
            # a snapshot whose as-of does not parse simply leaves the field unset
            with contextlib.suppress(ValueError):
                response.snapshot_as_of.FromJsonString(
                    as_of if as_of.endswith("Z") else as_of + "Z"
                )
        for share in summary.segments:
            response.segments.add(
                segment=segment_enum(share.segment.name),
                segment_name=share.segment.name,
                cluster_id=share.cluster_id,
                customers=share.customers,
                share=share.share,
                mean_recency_days=share.mean_recency_days,
                mean_frequency=share.mean_frequency,
                mean_monetary=share.mean_monetary,
                recommended_action=share.segment.action,
            )
        return response

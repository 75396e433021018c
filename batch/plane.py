"""The server's data plane, built in-process for bulk scoring (no gRPC, no watcher).

Same registry (SHA-256 checks, pins, typed specs), executor and handlers as the server, so a
bulk score runs exactly the code a served one does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from crm.artifacts import KIND_FEATURES, KIND_PRODUCTS
from server.campaign.forecast import load_product_snapshot
from server.dataplane.base import Plane
from server.dataplane.churn import ChurnHandler
from server.dataplane.inputs import InputResolver
from server.dataplane.segmentation import SegmentationHandler
from server.dataplane.spend import RevenueHandler, SpendHandler
from server.metrics import ServerMetrics
from server.models.artifact import LoadedArtifact
from server.models.executor import BatchingConfig, ModelExecutor
from server.models.inflight import InFlight
from server.models.registry import ModelRegistry, Outcome
from server.models.snapshot import load_feature_snapshot

MODELS = ("churn", "spend", "segmentation")
REVENUE = "revenue"  # optional: values the lines of a lines input (--revenue-output)


class ArtifactsMissing(RuntimeError):
    """A model bulk scoring needs is not loadable from the artifacts directory."""


@dataclass
class BatchPlane:
    """The handlers bulk scoring calls, over one artifacts directory."""

    plane: Plane
    churn: ChurnHandler
    spend: SpendHandler
    segments: SegmentationHandler
    revenue: RevenueHandler | None  # when the artifacts hold a revenue model

    @classmethod
    def load(
        cls,
        artifacts: Path,
        pins: Mapping[str, int] | None = None,
        max_rows: int = 1 << 30,
        *,
        tree_evaluator: bool = True,
    ) -> BatchPlane:
        """Load every model once (one onnxruntime thread per session: parallelism comes from
        processes or actors, each with its own plane); `tree_evaluator` as the server's
        --tree-evaluator."""
        metrics = ServerMetrics()
        registry = ModelRegistry(
            Path(artifacts),
            metrics,
            ort_threads=1,
            tree_evaluator=tree_evaluator,
            keep_versions=1,
            pins=pins,
            loaders={KIND_FEATURES: load_feature_snapshot, KIND_PRODUCTS: load_product_snapshot},
        )
        results = registry.reload()
        for name in MODELS:
            if not registry.is_serving(name):
                why = [r.reason for r in results if r.name == name and r.outcome is Outcome.REFUSED]
                raise ArtifactsMissing(
                    f"model {name!r} cannot be loaded from {artifacts}"
                    + (f": {why[-1]}" if why else "")
                )
        # No batching delay: a bulk caller sends big chunks one at a time per plane.
        executor = ModelExecutor(metrics, BatchingConfig(), {}, InFlight())
        plane = Plane(registry, executor, InputResolver(max_rows))
        revenue = RevenueHandler(plane) if registry.is_serving(REVENUE) else None
        return cls(
            plane, ChurnHandler(plane), SpendHandler(plane), SegmentationHandler(plane), revenue
        )

    def model(self, name: str) -> LoadedArtifact:
        return self.plane.artifact(name)

    def feature_names(self) -> list[str]:
        """Every feature any of the models reads, in first-seen order (churn's first)."""
        names: dict[str, None] = {}
        for name in MODELS:
            names.update(dict.fromkeys(self.model(name).model.feature_names))
        return list(names)

    def close(self) -> None:
        self.churn.close()
        self.plane.registry.close()

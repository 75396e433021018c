"""What the segmentation, churn and spend services share: resolve inputs, run, reference."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

import grpc
import numpy as np

from crm.v1 import common_pb2
from server.errors import NotFound, Unavailable
from server.executor import ModelExecutor, Outputs
from server.inputs import InputResolver, Resolved
from server.registry import LoadedArtifact, ModelRegistry
from server.snapshot import FeatureSnapshot

FEATURES_ARTIFACT = "features"
T = TypeVar("T")


def model_ref(artifact: LoadedArtifact) -> common_pb2.ModelRef:
    return common_pb2.ModelRef(name=artifact.name, version=artifact.version)


def serving_section(artifact: LoadedArtifact) -> dict[str, Any]:
    return dict(artifact.manifest.get("serving") or {})


class VersionCache:
    """Values derived from (model version, snapshot version): computed once, reused."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[Hashable, Any] = {}

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            if key in self._values:
                return self._values[key]
        value = compute()
        with self._lock:
            if len(self._values) > 16:
                self._values.clear()
            self._values[key] = value
        return value


class ScoringService:
    """Base of the per-customer scoring servicers (composition over the registry)."""

    model_name: str = ""

    def __init__(
        self, registry: ModelRegistry, executor: ModelExecutor, resolver: InputResolver
    ) -> None:
        self.registry = registry
        self.executor = executor
        self.resolver = resolver
        self.cache = VersionCache()

    def model(self, version: int = 0) -> LoadedArtifact:
        """The serving (or pinned) version; UNAVAILABLE while none is loaded."""
        try:
            return self.registry.get(self.model_name, version)
        except NotFound:
            if version:
                raise
            raise Unavailable(f"model {self.model_name!r} is not loaded") from None

    def snapshot(self) -> FeatureSnapshot | None:
        try:
            payload = self.registry.get(FEATURES_ARTIFACT).payload
        except (Unavailable, NotFound):
            return None
        return payload if isinstance(payload, FeatureSnapshot) else None

    def resolve(
        self,
        artifact: LoadedArtifact,
        customers: Sequence[common_pb2.CustomerInput],
        batch: common_pb2.FeatureMatrix | None,
    ) -> Resolved:
        return self.resolver.resolve(
            customers, batch, artifact.model.feature_names, self.snapshot()
        )

    def run(
        self, artifact: LoadedArtifact, matrix: np.ndarray, context: grpc.ServicerContext | None
    ) -> Outputs:
        timeout = context.time_remaining() if context is not None else None
        return self.executor.run(artifact, matrix, timeout)

    def snapshot_outputs(self, artifact: LoadedArtifact) -> tuple[FeatureSnapshot, Outputs] | None:
        """The model's outputs over the whole snapshot, cached per version pair."""
        snapshot = self.snapshot()
        if snapshot is None or len(snapshot) == 0:
            return None

        def compute() -> Outputs:
            matrix = snapshot.matrix(artifact.model.feature_names)
            return artifact.model.run(matrix)

        key = ("snapshot", artifact.name, artifact.version, snapshot.version)
        return snapshot, self.cache.get(key, compute)


def batch_of(request: Any) -> common_pb2.FeatureMatrix | None:
    return request.batch if request.HasField("batch") else None

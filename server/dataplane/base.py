"""What every scoring handler shares: the model and snapshot a call uses, feature rows, and
scores from the snapshot's precomputed outputs or the executor. Nothing here knows gRPC.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from crm.v1 import common_pb2
from server.dataplane.inputs import InputResolver, Resolved
from server.errors import InvalidArgument, NotFound, Unavailable
from server.models.executor import ModelExecutor, Outputs
from server.models.registry import LoadedArtifact, ModelRegistry
from server.models.snapshot import FeatureSnapshot

FEATURES_ARTIFACT = "features"
T = TypeVar("T")


@dataclass(frozen=True)
class ModelId:
    """Which model and version produced an answer (every prediction carries one)."""

    name: str
    version: int

    @classmethod
    def of(cls, artifact: LoadedArtifact) -> ModelId:
        return cls(artifact.name, artifact.version)


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


@dataclass(frozen=True)
class Plane:
    """The parts of the server every handler uses, built once by the app."""

    registry: ModelRegistry
    executor: ModelExecutor
    resolver: InputResolver

    def artifact(self, name: str, version: int = 0) -> LoadedArtifact:
        """Model `name` at `version` (0: the serving one). A negative version is the caller's
        mistake; a serving model that is not loaded is UNAVAILABLE (retry), a pinned version
        that is not loaded NOT_FOUND."""
        if version < 0:
            raise InvalidArgument.field("model_version", "must be >= 0 (0 = serving)")
        try:
            return self.registry.get(name, version)
        except NotFound:
            if version:
                raise
            raise Unavailable(f"model {name!r} is not loaded") from None

    def snapshot(self) -> FeatureSnapshot | None:
        try:
            payload = self.registry.get(FEATURES_ARTIFACT).payload
        except (Unavailable, NotFound):
            return None
        return payload if isinstance(payload, FeatureSnapshot) else None

    def run(self, artifact: LoadedArtifact, matrix: np.ndarray, timeout: float | None) -> Outputs:
        return self.executor.run(artifact, matrix, timeout)

    def counted(self) -> AbstractContextManager[None]:
        """Count a scoring request in flight (the batching executor's hint of company)."""
        return self.executor.in_flight.call()


class ScoringHandler:
    """Base of the per-customer handlers: resolve -> infer (precomputed or executor)."""

    model_name: str = ""

    def __init__(self, plane: Plane) -> None:
        self.plane = plane
        self.cache = VersionCache()

    def model(self, version: int = 0) -> LoadedArtifact:
        return self.plane.artifact(self.model_name, version)

    def resolve(
        self,
        artifact: LoadedArtifact,
        customers: Sequence[common_pb2.CustomerInput],
        batch: common_pb2.FeatureMatrix | None,
        snapshot: FeatureSnapshot | None,
    ) -> Resolved:
        """Feature rows for `artifact`. The caller fetches the snapshot once per call and
        passes it to everything that needs it, so one call never mixes two snapshot versions."""
        return self.plane.resolver.resolve(customers, batch, artifact.model.feature_names, snapshot)

    def score(self, artifact: LoadedArtifact, resolved: Resolved, timeout: float | None) -> Outputs:
        """The model's outputs for the resolved rows.

        Customers given by id are answered from the outputs precomputed over the whole
        snapshot (same model, same feature rows: the same numbers), which spares the call a
        model run: under load one onnxruntime call costs far more than its 10-20 us.
        """
        rows, snapshot = resolved.snapshot_rows, resolved.snapshot
        if rows is not None and snapshot is not None:
            scored = self.snapshot_outputs(artifact, snapshot)
            if scored is not None:
                self.plane.executor.count_precomputed(artifact, rows.size)
                return {name: values[rows] for name, values in scored[1].items()}
        if not resolved.matrix.shape[0]:
            return {}
        return self.plane.run(artifact, resolved.matrix, timeout)

    def precompute(self) -> None:
        """Score the snapshot with the serving model now (a registry listener), so the first
        call by customer_id after a start or reload does not pay for it."""
        try:
            artifact = self.model()
        except Unavailable:
            return
        self.snapshot_outputs(artifact)

    def snapshot_outputs(
        self, artifact: LoadedArtifact, snapshot: FeatureSnapshot | None = None
    ) -> tuple[FeatureSnapshot, Outputs] | None:
        """The model's outputs over the whole snapshot (the serving one unless given), cached
        per version pair; computed through the executor like any other rows."""
        snapshot = snapshot if snapshot is not None else self.plane.snapshot()
        if snapshot is None or len(snapshot) == 0:
            return None

        def compute() -> Outputs:
            return self.plane.run(artifact, snapshot.matrix(artifact.model.feature_names), None)

        key = ("snapshot", artifact.name, artifact.version, snapshot.version)
        return snapshot, self.cache.get(key, compute)

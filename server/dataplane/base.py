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
from server.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from server.freshness.state import FreshFeatures
from server.models.artifact import LoadedArtifact
from server.models.executor import ModelExecutor, Outputs
from server.models.registry import ModelRegistry
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
    """Values derived from (model version, snapshot version): computed once, reused; the
    oldest are dropped first (snapshots change with every ingested batch)."""

    SIZE = 16

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[Hashable, Any] = {}

    def peek(self, key: Hashable) -> Any | None:
        with self._lock:
            return self._values.get(key)

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            if key in self._values:
                return self._values[key]
        value = compute()
        with self._lock:
            while len(self._values) >= self.SIZE:
                del self._values[next(iter(self._values))]
            self._values[key] = value
        return value


def artifact_snapshot(registry: ModelRegistry) -> FeatureSnapshot | None:
    """The features artifact's rows, as training wrote them (None when none is loaded)."""
    try:
        payload = registry.get(FEATURES_ARTIFACT).payload
    except (Unavailable, NotFound):
        return None
    return payload if isinstance(payload, FeatureSnapshot) else None


@dataclass(frozen=True)
class Plane:
    """The parts of the server every handler uses, built once by the app."""

    registry: ModelRegistry
    executor: ModelExecutor
    resolver: InputResolver
    fresh: FreshFeatures | None = None  # by-id rows as of today (None: the artifact's rows)

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
        """Every known customer's features: as of the end of today when the features artifact
        shipped its history (server.freshness), else the artifact's rows as training wrote them."""
        if self.fresh is not None:
            fresh = self.fresh.snapshot()
            if fresh is not None:
                return fresh
        return self.artifact_snapshot()

    def artifact_snapshot(self) -> FeatureSnapshot | None:
        return artifact_snapshot(self.registry)

    def snapshot_at(
        self, customers: Sequence[common_pb2.CustomerInput], as_of_ns: int | None
    ) -> FeatureSnapshot | None:
        """The snapshot by-id rows of one call come from: today's, or the named customers'
        rows as of `as_of_ns` (an explicit as-of time in the request)."""
        if as_of_ns is None:
            return self.snapshot()
        ids = [c.customer_id.strip() for c in customers if c.WhichOneof("input") == "customer_id"]
        if not ids:  # as_of only concerns customers given by id
            return self.snapshot()
        if self.fresh is None or self.fresh.snapshot() is None:
            raise FailedPrecondition(
                "the features artifact has no customer history, so as_of cannot be served: "
                "retrain with this version of training"
            )
        return self.fresh.snapshot_at(ids, as_of_ns / 1e9)

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
        if rows is not None and snapshot is not None and snapshot.precomputable:
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

        names = artifact.model.feature_names

        def compute() -> Outputs:
            parent = snapshot.parent
            before = None
            if parent is not None:
                before = self.cache.peek(("snapshot", artifact.name, artifact.version, parent[0]))
            if before is None:
                return self.plane.run(artifact, snapshot.matrix(names), None)
            # patched from a snapshot already scored: score only the rows that differ
            rows = parent[1]
            changed = self.plane.run(artifact, snapshot.matrix(names, rows), None)
            out = {}
            for name, values in before.items():
                grown = np.zeros((len(snapshot), *values.shape[1:]), dtype=values.dtype)
                grown[: len(values)] = values
                grown[rows] = np.asarray(changed[name]).reshape(len(rows), *values.shape[1:])
                out[name] = grown
            return out

        key = ("snapshot", artifact.name, artifact.version, snapshot.version)
        return snapshot, self.cache.get(key, compute)

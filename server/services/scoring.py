"""What the segmentation, churn and spend services share: resolve inputs, run, reference."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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
STREAM_WINDOW = 4  # stream messages being decoded/scored at once, per stream
T = TypeVar("T")
R = TypeVar("R")


def pipelined(
    requests: Iterable[T], work: Callable[[T], R], pool: ThreadPoolExecutor, window: int
) -> Iterator[R]:
    """Results of `work` over a stream, in order, with up to `window` requests in flight.

    Reading ahead at most `window` messages keeps gRPC flow control meaningful: a client that
    floods the stream is held back once the window is full.
    """
    pending: deque[Future[R]] = deque()
    try:
        for request in requests:
            pending.append(pool.submit(work, request))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


def model_ref(artifact: LoadedArtifact) -> common_pb2.ModelRef:
    return common_pb2.ModelRef(name=artifact.name, version=artifact.version)


def serving_section(artifact: LoadedArtifact) -> Mapping[str, Any]:
    """The manifest's `serving` section, read-only (not copied: it is read on every call)."""
    return artifact.manifest.get("serving") or {}


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
        self,
        registry: ModelRegistry,
        executor: ModelExecutor,
        resolver: InputResolver,
        stream_pool: ThreadPoolExecutor,
    ) -> None:
        self.registry = registry
        self.executor = executor
        self.resolver = resolver
        self.stream_pool = stream_pool
        self.cache = VersionCache()

    def stream(self, requests: Iterable[T], work: Callable[[T], R]) -> Iterator[R]:
        return pipelined(requests, work, self.stream_pool, STREAM_WINDOW)

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
        snapshot: FeatureSnapshot | None,
    ) -> Resolved:
        """Feature rows for `artifact`. The caller fetches the snapshot once per call and
        passes it to everything that needs it, so one call never mixes two snapshot versions."""
        return self.resolver.resolve(customers, batch, artifact.model.feature_names, snapshot)

    def run(
        self, artifact: LoadedArtifact, matrix: np.ndarray, context: grpc.ServicerContext | None
    ) -> Outputs:
        timeout = context.time_remaining() if context is not None else None
        return self.executor.run(artifact, matrix, timeout)

    def score(
        self, artifact: LoadedArtifact, resolved: Resolved, context: grpc.ServicerContext | None
    ) -> Outputs:
        """The model's outputs for the resolved rows.

        Customers given by id are answered from the outputs precomputed over the whole
        snapshot (same model version, same feature rows: the same numbers), which spares the
        call a model run: under load one onnxruntime call costs far more than its 10-20 us.
        """
        rows, snapshot = resolved.snapshot_rows, resolved.snapshot
        if rows is not None and snapshot is not None:
            scored = self.snapshot_outputs(artifact, snapshot)
            if scored is not None:
                self.executor.count_precomputed(artifact, rows.size)
                return {name: values[rows] for name, values in scored[1].items()}
        return self.run(artifact, resolved.matrix, context)

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
        per version pair."""
        snapshot = snapshot if snapshot is not None else self.snapshot()
        if snapshot is None or len(snapshot) == 0:
            return None

        def compute() -> Outputs:
            matrix = snapshot.matrix(artifact.model.feature_names)
            return artifact.model.run(matrix)

        key = ("snapshot", artifact.name, artifact.version, snapshot.version)
        return snapshot, self.cache.get(key, compute)


def batch_of(request: Any) -> common_pb2.FeatureMatrix | None:
    return request.batch if request.HasField("batch") else None

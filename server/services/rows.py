"""What the scoring servicers share when they convert: a reply row per request row, and the
stream pipeline that scores several messages of one stream at once."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from crm.v1 import common_pb2
from server.dataplane.base import ModelId
from server.dataplane.inputs import Resolved
from server.errors import InvalidArgument
from server.limits import timestamp_violation

STREAM_WINDOW = 4  # stream messages being decoded/scored at once, per stream
T = TypeVar("T")
R = TypeVar("R")


def model_ref(model: ModelId) -> common_pb2.ModelRef:
    return common_pb2.ModelRef(name=model.name, version=model.version)


def batch_of(request: Any) -> common_pb2.FeatureMatrix | None:
    return request.batch if request.HasField("batch") else None


def as_of_ns(request: Any) -> int | None:
    """A request's optional `as_of` in ns since the epoch; INVALID_ARGUMENT when malformed."""
    if not request.HasField("as_of"):
        return None
    if bad := timestamp_violation(request.as_of, "as_of"):
        raise InvalidArgument([bad])
    return int(request.as_of.ToNanoseconds())


def stamp_as_of(response: Any, rows: Resolved) -> None:
    """The reply's `as_of`: when the features of customers given by id were taken."""
    as_of = rows.as_of_ns
    if as_of is not None:
        response.as_of.FromNanoseconds(as_of)


def slots(rows: Resolved) -> Iterator[tuple[int, int | None]]:
    """(request row, its position among the scored rows, or None when it has an error), for
    every request row in order."""
    if len(rows.scored) == rows.n:
        for i in range(rows.n):
            yield i, i
        return
    position = {int(i): k for k, i in enumerate(rows.scored)}
    for i in range(rows.n):
        yield i, position.get(i)


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

"""The one call path of every typed client: a default deadline, and grpc.RpcError as CrmError.

A CrmClient and its scoring, campaign and integrity sub-clients share one `Caller`, so a
deadline set on the CrmClient holds for every call it makes, and an RPC failure reaches the
caller as a CrmError with its code and field violations decoded, whichever client made it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Any, TypeVar

import grpc

from clients.errors import CrmError

T = TypeVar("T")


class Caller:
    """Invokes stub methods with the default deadline and translates their failures."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout

    def __call__(self, method: Callable[..., T], request: Any, timeout: float | None = None) -> T:
        """One unary (or client-streaming) call; `timeout` None means the default deadline."""
        try:
            return method(request, timeout=self.timeout if timeout is None else timeout)
        except grpc.RpcError as err:
            raise CrmError.from_rpc_error(err) from None

    def stream(self, responses: Iterable[T], ends: Collection[grpc.StatusCode] = ()) -> Iterator[T]:
        """The messages of a response stream; a failure with a code in `ends` ends it quietly.

        `ends` is for streams a deadline or a cancel is the normal way to stop (watching).
        """
        try:
            yield from responses
        except grpc.RpcError as err:
            if err.code() not in ends:
                raise CrmError.from_rpc_error(err) from None

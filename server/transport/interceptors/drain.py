"""The drain gate: every call counts in `server.transport.drain.CallGate` until its status is sent, and
a call that reaches its handler once a drain has settled is refused with UNAVAILABLE, which
clients retry (on another worker, or after the restart). Why the drain is done here and not
by grpc's `server.stop(grace)`: see `server.transport.drain`.
"""

from __future__ import annotations

import grpc

from server.transport.drain import CallGate
from server.transport.interceptors.chain import Hooks, Method

DRAINING_MESSAGE = "the server is shutting down; retry the call"


class DrainGate:
    def __init__(self, gate: CallGate) -> None:
        self._gate = gate

    def bind(self, method: Method) -> Hooks:
        return _Gated(self._gate, method.path)


class _Gated(Hooks):
    def __init__(self, gate: CallGate, path: str) -> None:
        self._gate = gate
        self._path = path

    def start(self, context: grpc.ServicerContext) -> None:
        gate, path = self._gate, self._path
        if not gate.enter(path):
            context.abort(grpc.StatusCode.UNAVAILABLE, DRAINING_MESSAGE)
        # Left when the status is sent (or the call cancelled), not when the handler returns:
        # a stream's responses are still being sent after that.
        if not context.add_callback(lambda: gate.leave(path)):
            gate.leave(path)  # the call had already ended

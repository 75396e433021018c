"""Error mapping: what a call that raised ends with, as a status the client can act on.

Handlers raise `server.errors.ServiceError` subclasses on purpose; those become their status
with google.rpc details. A handler that set its own status (context.abort, or the generated
UNIMPLEMENTED stub) keeps it. Anything else is logged with its traceback and reaches the client
as INTERNAL with a generic message -- never UNKNOWN, never the exception text. A call the client
has gone from (or a stream grpc closed) is left as it is: there is no one to tell.

`outcome` is the one rule for which status an exception means; the metrics stage counts by it,
so the count and the status sent agree. This stage is the outermost: it sees what every other
stage raised.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc
from grpc_status import rpc_status

from server.errors import INTERNAL_MESSAGE, ServiceError
from server.transport.interceptors.chain import Hooks, Method

log = logging.getLogger("server.rpc")
_OK = grpc.StatusCode.OK


def outcome(error: BaseException, context: grpc.ServicerContext) -> grpc.StatusCode:
    """The status a call that ended with `error` ends with (CANCELLED: the client is gone)."""
    if isinstance(error, ServiceError):
        return error.code
    if isinstance(error, GeneratorExit) or not context.is_active():
        return grpc.StatusCode.CANCELLED
    code = context.code()
    if code is not None and code is not _OK:
        return code
    return grpc.StatusCode.INTERNAL


def ended_with(error: BaseException | None, context: grpc.ServicerContext) -> grpc.StatusCode:
    """The status a call ended with, at a stage's end: `outcome` of what ended it, else the
    code the handler set (OK when it set none)."""
    if error is not None:
        return outcome(error, context)
    return context.code() or _OK


class ErrorStatus:
    def bind(self, method: Method) -> Hooks:
        return _Mapped(method.path)


class _Mapped(Hooks):
    end_on_success = False

    def __init__(self, path: str) -> None:
        self._path = path

    def end(self, token: Any, context: grpc.ServicerContext, error: BaseException | None) -> None:
        if error is None:  # not called for a call that succeeded (end_on_success)
            return
        code = outcome(error, context)
        if isinstance(error, ServiceError):
            if code is grpc.StatusCode.INTERNAL:
                log.error("internal error", extra={"method": self._path}, exc_info=error)
            context.abort_with_status(rpc_status.to_status(error.to_status()))
        if code is grpc.StatusCode.CANCELLED:
            return  # the caller re-raises `error` as it is
        if code is not grpc.StatusCode.INTERNAL:
            # Aborting again, with the status already set, keeps grpc from logging the
            # exception as an application error.
            context.abort(code, context.details() or code.name)
        log.error("unhandled exception", extra={"method": self._path}, exc_info=error)
        context.abort(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)

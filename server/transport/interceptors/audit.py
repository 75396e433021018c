"""The audit trail of calls that pass authentication: every call of a write or admin method
(`server.security.scopes.AUDITED`) is one line with its caller, tenant, resource (from the
decoded request, `Hooks.seen`) and the status it ended with. Refusals are audited by the auth
stage, outside this one, so a refused call is one line, not two.
"""

from __future__ import annotations

from typing import Any

import grpc

from server.security import principal as principals
from server.security.audit import AuditTrail, resource_of
from server.security.scopes import AUDITED, SCOPE_OF, UNLISTED
from server.transport.interceptors.chain import Hooks, Method
from server.transport.interceptors.errors import ended_with


class Audit:
    def __init__(self, trail: AuditTrail) -> None:
        self._trail = trail

    def bind(self, method: Method) -> Hooks | None:
        # By the table itself, not the reflection setting: reflection reveals no data.
        if SCOPE_OF.get(method.path, UNLISTED) not in AUDITED or method.callback:
            return None
        return _Audited(self._trail, method.path)


class _Entry:
    __slots__ = ("principal", "resource")

    def __init__(self, principal: principals.Principal | None) -> None:
        self.principal = principal
        self.resource = ""


class _Audited(Hooks):
    def __init__(self, trail: AuditTrail, path: str) -> None:
        self._trail = trail
        self._path = path

    def start(self, context: grpc.ServicerContext) -> _Entry:
        return _Entry(principals.current())

    def seen(self, entry: _Entry, request: Any) -> None:  # type: ignore[override]
        entry.resource = resource_of(request)

    def end(
        self, entry: _Entry, context: grpc.ServicerContext, error: BaseException | None
    ) -> None:
        self._trail.record(
            self._path, entry.principal, entry.resource, ended_with(error, context).name
        )

"""Authentication, authorization and rate limits of every call, and the principal it runs as.

Per method, bound once: the scope it needs (`server.security.scopes`). Per call: an open method
passes as the anonymous principal; any other authenticates (bearer JWT or client certificate),
must hold the scope, takes a rate-limit token, and then runs as its principal, bound to the
handler thread (`server.security.principal`) until the call ends. Refusals raise the typed
errors (UNAUTHENTICATED, PERMISSION_DENIED, RESOURCE_EXHAUSTED) the error stage turns into
statuses, and each is one line of the audit trail. With authentication off every call runs as
`UNAUTHENTICATED_DEV` (rate limits still apply to it when configured).

The callback form of a server stream (health Watch) holds no handler thread, so no principal
is bound for it: its end may run on another call's thread.

Writes and admin calls that pass are audited by `server.transport.interceptors.audit`, inside
this stage, which then knows the request and the outcome.
"""

from __future__ import annotations

from typing import Any

import grpc

from server.errors import PermissionDenied, ResourceExhausted, Unauthenticated
from server.security import principal as principals
from server.security.policy import SecurityPolicy
from server.security.principal import ANONYMOUS_OPEN, UNAUTHENTICATED_DEV, Principal
from server.security.scopes import OPEN, grants, required_scope
from server.security.tokens import Authenticator
from server.transport.interceptors.chain import Hooks, Method

_REFUSALS = (Unauthenticated, PermissionDenied, ResourceExhausted)


class Authentication:
    def __init__(self, policy: SecurityPolicy) -> None:
        self._policy = policy

    def bind(self, method: Method) -> Hooks | None:
        policy = self._policy
        scope = required_scope(method.path, policy.open_reflection)
        binds = not method.callback
        if not policy.auth_required:
            limited = policy.limiter is not None and policy.limiter.limits(scope)
            if not (binds or limited):
                return None
            return _Guarded(method.path, scope, policy, None, binds)
        if scope == OPEN:
            return _Bound(ANONYMOUS_OPEN) if binds else None
        return _Guarded(method.path, scope, policy, policy.authenticator, binds)


class _Bound(Hooks):
    """Every call runs as one principal (open methods)."""

    def __init__(self, principal: Principal) -> None:
        self._principal = principal

    def start(self, context: grpc.ServicerContext) -> principals.Binding:
        return principals.bind(self._principal)

    def end(self, token: Any, context: grpc.ServicerContext, error: BaseException | None) -> None:
        principals.clear(token)


class _Guarded(Hooks):
    def __init__(
        self,
        path: str,
        scope: str,
        policy: SecurityPolicy,
        authenticator: Authenticator | None,
        binds: bool,
    ) -> None:
        self._path = path
        self._scope = scope
        self._authenticate = authenticator.authenticate if authenticator else None
        limiter = policy.limiter
        self._limit = limiter.take if limiter is not None and limiter.limits(scope) else None
        self._audit = policy.audit
        self._binds = binds
        if not binds:
            self.end = None  # type: ignore[assignment]  # nothing bound, nothing to clear

    def start(self, context: grpc.ServicerContext) -> principals.Binding | None:
        principal = None
        try:
            if self._authenticate is None:
                principal = UNAUTHENTICATED_DEV
            else:
                principal = self._authenticate(context)
                if not grants(principal.scopes, self._scope):
                    raise PermissionDenied(self._scope)
            if self._limit is not None:
                self._limit(principal, self._scope)
        except _REFUSALS as refusal:
            self._audit.record(self._path, principal, "", refusal.code.name)
            raise
        return principals.bind(principal) if self._binds else None

    def end(self, token: Any, context: grpc.ServicerContext, error: BaseException | None) -> None:
        principals.clear(token)

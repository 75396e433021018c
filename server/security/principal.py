"""The verified caller of the call a handler thread is serving.

The authentication stage (`server.transport.interceptors.auth`) binds it when a call starts and
clears it when the call ends; the tenant router and the audit trail read it. A handler thread
serves one call at a time, so a thread-local is exact for unary calls and for the start of a
stream (where the router picks the tenant's servicer).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Principal:
    """caller: the token's `sub` or the client certificate's subject ("anonymous" when
    authentication is off). tenant: from the verified token only; None when tenancy is off.
    scopes: what the token grants."""

    caller: str
    tenant: str | None
    scopes: frozenset[str]


# When authentication is off every call is this one: no tenant, every scope.
UNAUTHENTICATED_DEV = Principal(ANONYMOUS, None, frozenset({"*"}))

_local = threading.local()


def bind(principal: Principal) -> None:
    _local.principal = principal


def clear() -> None:
    _local.principal = None


def current() -> Principal | None:
    """The principal of the call this thread serves, or None outside a call."""
    return getattr(_local, "principal", None)

"""The verified caller of the call a handler thread is serving.

The authentication stage (`server.transport.interceptors.auth`) binds it when a call starts and
clears it when the call ends; the tenant router and the audit trail read it. A handler thread
serves one call at a time, so a thread-local is exact for unary calls and for the start of a
stream (where the router picks the tenant's servicer).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

ANONYMOUS = "anonymous"
# A tenant name: a safe path component (tenants get <artifacts>/<tenant>/, <data-dir>/<tenant>/).
TENANT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


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
# With authentication on, a call of an open method (health, open reflection): no scope at all.
ANONYMOUS_OPEN = Principal(ANONYMOUS, None, frozenset())

_local = threading.local()


class Binding:
    """What `bind` returns: `clear(binding)` clears only the principal this binding set, so an
    end that runs on another thread (a stream closed from elsewhere) cannot clear the
    principal of the call that thread serves now."""

    __slots__ = ()


def bind(principal: Principal) -> Binding:
    _local.principal = principal
    _local.binding = binding = Binding()
    return binding


def clear(binding: Binding | None = None) -> None:
    """Forget this thread's principal; with `binding`, only if it is still the one bound."""
    if binding is None or getattr(_local, "binding", None) is binding:
        _local.principal = None
        _local.binding = None


def current() -> Principal | None:
    """The principal of the call this thread serves, or None outside a call."""
    return getattr(_local, "principal", None)

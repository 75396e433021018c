"""Tenants kept apart: each call reaches the stack of the tenant its verified token names.

With `--tenants`, the server registers one router per crm.v1 service instead of the services
themselves. A call's router reads the principal the authentication stage bound
(`server.security.principal`) and hands the call to that tenant's servicer, in that tenant's
stack (`server.transport.stack`), built on the tenant's first call. The tenant comes from the
verified token only, never from a header the client chose, so no request field can reach
another tenant's models, logs, campaigns, alerts or statistics. A token without a tenant is
refused. A tenant with no models is answered UNAVAILABLE (or NOT_FOUND) for its own calls only.

Stacks are bounded (`--max-tenants`): each holds models in memory and a few threads. Tenant
names are checked as safe path components where they are read from the token
(`server.security.tokens`) and again here, since they name directories.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc

from server.config import ServerConfig
from server.errors import ResourceExhausted, ServiceError
from server.metrics import ServerMetrics
from server.security import principal
from server.security.principal import TENANT_NAME
from server.transport.stack import ServiceStack


class TenantRequired(ServiceError):
    """A call with tenants on whose credentials name no tenant."""

    code = grpc.StatusCode.PERMISSION_DENIED


class Tenants:
    """The stacks of the tenants seen so far, built on first use."""

    def __init__(
        self,
        config: ServerConfig,
        metrics: ServerMetrics,
        stream_pool: ThreadPoolExecutor,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self._config = config
        self._ready = ready
        self._metrics = metrics
        self._pool = stream_pool
        self._lock = threading.Lock()
        self._stacks: dict[str, ServiceStack] = {}
        self._building: dict[str, threading.Lock] = {}
        self._listeners: list[Callable[[], None]] = []
        self._closed = False

    def stacks(self) -> list[ServiceStack]:
        with self._lock:
            return list(self._stacks.values())

    def add_reload_listener(self, callback: Callable[[], None]) -> None:
        with self._lock:
            self._listeners.append(callback)
            stacks = list(self._stacks.values())
        for stack in stacks:
            stack.add_reload_listener(callback)

    def current(self) -> ServiceStack:
        """The stack of the tenant whose call this thread serves."""
        who = principal.current()
        tenant = who.tenant if who is not None else None
        if tenant is None:
            raise TenantRequired("these credentials name no tenant; this server has tenants")
        return self.stack(tenant)

    def stack(self, tenant: str) -> ServiceStack:
        stack = self._stacks.get(tenant)  # only names that passed the check below are keys
        if stack is not None:
            return stack
        if not TENANT_NAME.match(tenant):  # also checked where the token is read
            raise TenantRequired("the tenant name is not valid")
        with self._lock:
            known = tenant in self._stacks or tenant in self._building
            if not known and len(self._stacks) + len(self._building) >= self._config.max_tenants:
                raise ResourceExhausted(
                    f"this server holds at most {self._config.max_tenants} tenants",
                    subject="tenants",
                    description=f"at most {self._config.max_tenants} tenants per process",
                )
            building = self._building.setdefault(tenant, threading.Lock())
        with building:  # one build per tenant; other tenants' first calls do not wait on it
            stack = self._stacks.get(tenant)
            if stack is None:
                stack = self._build(tenant)
        return stack

    def _build(self, tenant: str) -> ServiceStack:
        config = self._config
        stack = ServiceStack.build(
            config,
            self._metrics,
            self._pool,
            artifacts=Path(config.artifacts) / tenant,
            data_dir=Path(config.data_dir) / tenant,
            namespace=tenant,
            ready=self._ready,
        )
        with self._lock:
            listeners = list(self._listeners)
        for callback in listeners:
            stack.add_reload_listener(callback)
        stack.start(config.reload_interval_seconds)
        with self._lock:
            self._stacks[tenant] = stack
            self._building.pop(tenant, None)
            if self._closed:  # the server stopped while this tenant loaded
                stack.close_endless()
        return stack

    def close_endless(self) -> None:
        with self._lock:
            self._closed = True
            stacks = list(self._stacks.values())
        for stack in stacks:
            stack.close_endless()

    def close(self) -> None:
        for stack in self.stacks():
            stack.close()


class RoutedServicer:
    """Stands in for one service's servicer: each method call goes to the current tenant's.

    The generated `add_*Servicer_to_server` reads each method off the servicer once; here each
    read returns a function that finds the tenant's servicer per call.
    """

    def __init__(self, tenants: Tenants, service: str) -> None:
        self._tenants = tenants
        self._service = service

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method.startswith("_"):
            raise AttributeError(method)
        tenants, service = self._tenants, self._service

        def routed(*args: Any) -> Any:
            return getattr(tenants.current().servicers[service], method)(*args)

        routed.__name__ = method
        return routed

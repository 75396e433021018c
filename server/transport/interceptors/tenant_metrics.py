"""Calls per tenant (`crm_tenant_calls_total{tenant, grpc_service, grpc_method, grpc_code}`),
only with --metrics-tenant-label: each tenant is a series of its own per method and code, so
the label is off by default and the grpc_server_* metrics never carry it."""

from __future__ import annotations

import grpc
from prometheus_client import Counter

from server.security import principal as principals
from server.transport.interceptors.chain import Hooks, Method
from server.transport.interceptors.errors import ended_with

NO_TENANT = "-"


class TenantCalls:
    def __init__(self, counter: Counter) -> None:
        self._counter = counter

    def bind(self, method: Method) -> Hooks | None:
        if method.callback:  # health Watch: open to all, no principal
            return None
        return _Counted(self._counter, method)


class _Counted(Hooks):
    def __init__(self, counter: Counter, method: Method) -> None:
        self._counter = counter
        self._service, self._method = method.service, method.name

    def start(self, context: grpc.ServicerContext) -> str:
        who = principals.current()
        return who.tenant if who is not None and who.tenant else NO_TENANT

    def end(self, tenant: str, context: grpc.ServicerContext, error: BaseException | None) -> None:
        self._counter.labels(
            tenant, self._service, self._method, ended_with(error, context).name
        ).inc()

"""The audit trail: one JSON line per write or admin call and per refusal by authentication,
authorization or rate limits, saying who (caller, tenant) did what (method, resource) with
which outcome (the gRPC code name), and when. Never a token: the trail is read by more people
than may hold one.

Destinations (`--audit-log`): a file (appended, line-buffered, one write per line under a lock,
so lines of concurrent calls never interleave), `-` for stderr, or by default the logger
"crm.audit" through the server's own logging (`server.logs`).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from typing import IO, Any

from google.protobuf.message import Message

from server.errors import ECHO_CHARS
from server.security.principal import Principal

AUDIT_LOGGER = "crm.audit"
STDERR = "-"
# The request fields that name what a call acts on, in the order they are looked for.
RESOURCE_FIELDS = ("log", "campaign_id", "id", "name")


def resource_of(request: Any) -> str:
    """The request's identifying field (a log, campaign or model name), or "" if it has none."""
    if not isinstance(request, Message):
        return ""
    fields = request.DESCRIPTOR.fields_by_name
    for name in RESOURCE_FIELDS:
        if name in fields:
            value = getattr(request, name)
            if isinstance(value, str) and value:
                return value[:ECHO_CHARS]
    return ""


class AuditTrail:
    def __init__(self, destination: str = "") -> None:
        self._lock = threading.Lock()
        self._logger = logging.getLogger(AUDIT_LOGGER)
        self._out: IO[str] | None = None
        self._owned = False
        if destination == STDERR:
            self._out = sys.stderr
        elif destination:
            self._out = open(destination, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
            self._owned = True

    def record(self, method: str, principal: Principal | None, resource: str, outcome: str) -> None:
        entry = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "caller": principal.caller if principal else None,
            "tenant": principal.tenant if principal else None,
            "method": method,
            "resource": resource,
            "outcome": outcome,
        }
        if self._out is None:
            self._logger.info("audit", extra=entry)
            return
        line = json.dumps(entry) + "\n"
        with self._lock:
            self._out.write(line)
            if not self._owned:
                self._out.flush()

    def close(self) -> None:
        if self._owned and self._out is not None:
            with self._lock:
                self._out.close()

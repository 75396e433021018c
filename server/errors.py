"""Typed service errors, mapped to gRPC status codes with google.rpc rich details.

Handlers raise these; the error interceptor turns them into statuses. Anything else raised is
an INTERNAL error with a generic message (the traceback goes to the log, never the client).

A status travels in the response trailers, which clients cap (grpc's default is 8 KiB of
metadata): a value the client sent is echoed through `echo` (at most ECHO_CHARS characters),
and `to_status` keeps the whole status under STATUS_BUDGET_BYTES whatever a handler put in it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2

ERROR_DOMAIN = "crm-serving"  # google.rpc.ErrorInfo.domain of every error this server names
ECHO_CHARS = 100
STATUS_BUDGET_BYTES = 4_096
MAX_VIOLATIONS = 50  # field violations a rejected request lists; the rest are dropped
_FIELD_CHARS = 200
_DESCRIPTION_CHARS = 300
_MESSAGE_CHARS = 1_000


def echo(value: object) -> str:
    """A client's value quoted for a message: repr, cut to ECHO_CHARS characters."""
    text = repr(value)
    if len(text) <= ECHO_CHARS:
        return text
    return f"{text[: ECHO_CHARS - 1]}... ({len(str(value))} characters)"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


def _packed(*details: Message) -> tuple[any_pb2.Any, ...]:
    out = []
    for detail in details:
        packed = any_pb2.Any()
        packed.Pack(detail)
        out.append(packed)
    return tuple(out)


class ServiceError(Exception):
    """Base of the errors a handler raises on purpose."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def details(self) -> Sequence[any_pb2.Any]:
        return ()

    def to_status(self) -> status_pb2.Status:
        """The status, within STATUS_BUDGET_BYTES: details that do not fit are dropped (the
        message still says what went wrong)."""
        status = status_pb2.Status(
            code=self.code.value[0], message=_cut(self.message, _MESSAGE_CHARS)
        )
        for detail in self.details():
            if status.ByteSize() + detail.ByteSize() <= STATUS_BUDGET_BYTES:
                status.details.append(detail)
        return status


class InvalidArgument(ServiceError):
    """Malformed input; carries BadRequest field violations naming each field."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(
        self, violations: Iterable[FieldViolation] | FieldViolation, message: str = ""
    ) -> None:
        self.violations = (
            [violations] if isinstance(violations, FieldViolation) else list(violations)
        )
        if not message:
            message = "; ".join(f"{v.field}: {v.description}" for v in self.violations[:5])
            if len(self.violations) > 5:
                message += f"; and {len(self.violations) - 5} more"
        super().__init__(message)

    @classmethod
    def field(cls, field: str, description: str) -> InvalidArgument:
        return cls(FieldViolation(field, description))

    def details(self) -> Sequence[any_pb2.Any]:
        """One BadRequest with as many violations as fit the status budget, in order."""
        bad = error_details_pb2.BadRequest()
        room = STATUS_BUDGET_BYTES - len(self.message[:_MESSAGE_CHARS].encode()) - 64
        for v in self.violations:
            item = error_details_pb2.BadRequest.FieldViolation(
                field=_cut(v.field, _FIELD_CHARS),
                description=_cut(v.description, _DESCRIPTION_CHARS),
            )
            room -= item.ByteSize() + 4
            if room < 0 and bad.field_violations:
                break
            bad.field_violations.append(item)
        return _packed(bad)


class NotFound(ServiceError):
    code = grpc.StatusCode.NOT_FOUND

    def __init__(
        self,
        message: str,
        resource_type: str = "",
        resource_name: str = "",
        violation: FieldViolation | None = None,
    ) -> None:
        super().__init__(message)
        self.resource_type = resource_type
        self.resource_name = resource_name
        self.violation = violation  # the request field that named what is missing, if any

    def details(self) -> Sequence[any_pb2.Any]:
        found = () if self.violation is None else InvalidArgument(self.violation).details()
        if not self.resource_type:
            return found
        info = error_details_pb2.ResourceInfo(
            resource_type=self.resource_type, resource_name=_cut(self.resource_name, ECHO_CHARS)
        )
        return (*_packed(info), *found)


class Unavailable(ServiceError):
    """The service cannot answer now (e.g. its model is not loaded); clients may retry."""

    code = grpc.StatusCode.UNAVAILABLE


class ResourceExhausted(ServiceError):
    """A limit was reached; carries a google.rpc QuotaFailure naming it when `subject` is set,
    and a google.rpc RetryInfo when `retry_after` (seconds) says when a retry can succeed."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(
        self,
        message: str,
        subject: str = "",
        description: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.subject = subject
        self.description = description
        self.retry_after = retry_after

    def details(self) -> Sequence[any_pb2.Any]:
        details: list[Message] = []
        if self.subject:
            violation = error_details_pb2.QuotaFailure.Violation(
                subject=_cut(self.subject, _FIELD_CHARS), description=self.description
            )
            details.append(error_details_pb2.QuotaFailure(violations=[violation]))
        if self.retry_after is not None:
            delay = duration_pb2.Duration()
            delay.FromNanoseconds(max(0, round(self.retry_after * 1e9)))
            details.append(error_details_pb2.RetryInfo(retry_delay=delay))
        return _packed(*details)


UNAUTHENTICATED_MESSAGE = "missing or invalid credentials"


class Unauthenticated(ServiceError):
    """No credentials, or credentials that do not verify. One message and one reason whatever
    failed (signature, expiry, audience, ...): telling which part failed helps a forger."""

    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"

    def __init__(self) -> None:
        super().__init__(UNAUTHENTICATED_MESSAGE)

    def details(self) -> Sequence[any_pb2.Any]:
        return _packed(error_details_pb2.ErrorInfo(reason=self.reason, domain=ERROR_DOMAIN))


class PermissionDenied(ServiceError):
    """A verified caller without the scope the method needs; names the scope, so the caller
    knows which token to ask for (the scope table is no secret)."""

    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "MISSING_SCOPE"

    def __init__(self, scope: str) -> None:
        super().__init__(f"this call needs the scope {scope!r}")
        self.scope = scope

    def details(self) -> Sequence[any_pb2.Any]:
        info = error_details_pb2.ErrorInfo(
            reason=self.reason, domain=ERROR_DOMAIN, metadata={"scope": self.scope}
        )
        return _packed(info)


class FailedPrecondition(ServiceError):
    """The request is well formed but the server's state refuses it now; `violation`, when
    given, names the field whose value the state refuses (a google.rpc BadRequest)."""

    code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, message: str, violation: FieldViolation | None = None) -> None:
        super().__init__(message)
        self.violation = violation

    def details(self) -> Sequence[any_pb2.Any]:
        if self.violation is None:
            return ()
        return InvalidArgument(self.violation, self.message).details()


class DeadlineExceeded(ServiceError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


INTERNAL_MESSAGE = "internal error; see the server log"


def internal_status() -> status_pb2.Status:
    return status_pb2.Status(code=code_pb2.INTERNAL, message=INTERNAL_MESSAGE)

"""Typed service errors, mapped to gRPC status codes with google.rpc rich details.

Handlers raise these; the error interceptor turns them into statuses. Anything else raised is
an INTERNAL error with a generic message (the traceback goes to the log, never the client).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


def _packed(detail: Message) -> tuple[any_pb2.Any]:
    packed = any_pb2.Any()
    packed.Pack(detail)
    return (packed,)


class ServiceError(Exception):
    """Base of the errors a handler raises on purpose."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def details(self) -> Sequence[any_pb2.Any]:
        return ()

    def to_status(self) -> status_pb2.Status:
        status = status_pb2.Status(code=self.code.value[0], message=self.message)
        status.details.extend(self.details())
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
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in self.violations
            ]
        )
        return _packed(bad)


class NotFound(ServiceError):
    code = grpc.StatusCode.NOT_FOUND

    def __init__(self, message: str, resource_type: str = "", resource_name: str = "") -> None:
        super().__init__(message)
        self.resource_type = resource_type
        self.resource_name = resource_name

    def details(self) -> Sequence[any_pb2.Any]:
        if not self.resource_type:
            return ()
        info = error_details_pb2.ResourceInfo(
            resource_type=self.resource_type, resource_name=self.resource_name
        )
        return _packed(info)


class Unavailable(ServiceError):
    """The service cannot answer now (e.g. its model is not loaded); clients may retry."""

    code = grpc.StatusCode.UNAVAILABLE


class ResourceExhausted(ServiceError):
    """A limit was reached; carries a google.rpc QuotaFailure naming it when `subject` is set."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, message: str, subject: str = "", description: str = "") -> None:
        super().__init__(message)
        self.subject = subject
        self.description = description

    def details(self) -> Sequence[any_pb2.Any]:
        if not self.subject:
            return ()
        failure = error_details_pb2.QuotaFailure(
            violations=[
                error_details_pb2.QuotaFailure.Violation(
                    subject=self.subject, description=self.description
                )
            ]
        )
        return _packed(failure)


class FailedPrecondition(ServiceError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class DeadlineExceeded(ServiceError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


INTERNAL_MESSAGE = "internal error; see the server log"


def internal_status() -> status_pb2.Status:
    return status_pb2.Status(code=code_pb2.INTERNAL, message=INTERNAL_MESSAGE)

"""Client-side errors: a gRPC failure with its code and google.rpc field violations decoded."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class CrmError(Exception):
    def __init__(
        self, code: grpc.StatusCode, message: str, violations: tuple[FieldViolation, ...] = ()
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.violations = violations

    @classmethod
    def from_rpc_error(cls, err: grpc.RpcError) -> CrmError:
        call = err if isinstance(err, grpc.Call) else None
        code = call.code() if call is not None else grpc.StatusCode.UNKNOWN
        message = (call.details() if call is not None else str(err)) or ""
        violations: list[FieldViolation] = []
        status = rpc_status.from_call(call) if call is not None else None
        for detail in status.details if status is not None else ():
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations.extend(
                    FieldViolation(v.field, v.description) for v in bad.field_violations
                )
        return cls(code, message, tuple(violations))

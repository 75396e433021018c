"""Result types every typed client shares: which model answered, and why a row failed."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from crm.v1 import common_pb2

_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: int

    @classmethod
    def from_proto(cls, model: common_pb2.ModelRef) -> ModelRef:
        return cls(model.name, model.version)


@dataclass(frozen=True)
class RowFailure:
    """One row of a batch that was not answered; the rest of the batch was."""

    code: str  # "NOT_FOUND", "INVALID_ARGUMENT", ...
    message: str
    field: str

    @classmethod
    def from_proto(cls, error: common_pb2.RowError) -> RowFailure:
        return cls(_CODE_NAMES.get(error.code, str(error.code)), error.message, error.field)

"""The committed stubs (crm/v1, and inference/ for the Open Inference Protocol) must match
protos/: regenerate and compare descriptors."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

REPO = Path(__file__).resolve().parent.parent
# Each generated package and its protos (protos/google and protos/grpc are shipped for other
# languages only: Python takes them from googleapis-common-protos and grpcio-health-checking).
PACKAGES = {
    "crm.v1": sorted((REPO / "protos" / "crm" / "v1").glob("*.proto")),
    "inference": sorted((REPO / "protos" / "inference").glob("*.proto")),
}


def _normalised(proto: descriptor_pb2.FileDescriptorProto) -> descriptor_pb2.FileDescriptorProto:
    """Drop json_name, which protoc adds to descriptor sets but not to embedded descriptors."""
    copy = descriptor_pb2.FileDescriptorProto()
    copy.CopyFrom(proto)
    pending = list(copy.message_type)
    while pending:
        message = pending.pop()
        for field in (*message.field, *message.extension):
            field.ClearField("json_name")
        pending.extend(message.nested_type)
    return copy


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_generated_stubs_match_protos(tmp_path: Path, package: str) -> None:
    out = tmp_path / "set.pb"
    folder = REPO / package.replace(".", "/")
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I", str(REPO / "protos"),
         f"--descriptor_set_out={out}", *map(str, PACKAGES[package])],
        check=True,
    )  # fmt: skip
    fresh = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    assert fresh.file, "protoc produced no descriptors"
    for proto in fresh.file:
        stem = Path(proto.name).stem
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"):
            assert (folder / f"{stem}{suffix}").exists(), f"missing {stem}{suffix}"
        committed = importlib.import_module(f"{package}.{stem}_pb2").DESCRIPTOR.serialized_pb
        assert _normalised(descriptor_pb2.FileDescriptorProto.FromString(committed)) == _normalised(
            proto
        ), (
            f"{folder.relative_to(REPO)}/{stem}_pb2.py is stale against protos/{proto.name}: run `make protos`"
        )
    generated = {p.name.split("_pb2")[0] for p in folder.glob("*_pb2.py")}
    assert generated == {Path(p.name).stem for p in fresh.file}, "stubs without a proto"

"""Keys, tokens and raw calls for the authentication tests: real keys (`crm-server keys` and the
cryptography library), real tokens signed by PyJWT, a real server on loopback.

Kept out of conftest.py on purpose (the TLS tests share tests/security/); the test modules
import what they use from here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.rpc import error_details_pb2, status_pb2

from server.security.mint import ES256_PRIVATE, ES256_PUBLIC, HMAC_FILE, write_keys
from tests.fuzz.harness import Rpc, declared_rpcs
from tests.serverproc import RunningServer, launch

ISSUER = "https://issuer.test"
AUDIENCE = "crm-serving-test"
CALL_TIMEOUT_S = 10.0
STREAM_WAIT_S = 2.0  # an endless stream that passed authentication: its first response or this


@dataclass(frozen=True)
class Keys:
    hmac: Path  # HS256 secret file
    es_private: Path
    es_public: Path
    rsa_private: Any  # an RSA key whose public half is only in the JWKS file
    jwks: Path
    root: Path

    @property
    def secret(self) -> bytes:
        return self.hmac.read_bytes().strip()

    def server_args(self) -> list[str]:
        return [
            "--auth-hmac-secret-file", str(self.hmac),
            "--auth-public-keys", str(self.es_public),
            "--auth-jwks-file", str(self.jwks),
            "--auth-issuer", ISSUER,
            "--auth-audience", AUDIENCE,
        ]  # fmt: skip


def make_keys(root: Path) -> Keys:
    """An HS256 secret and an ES256 pair from `crm-server keys`, an RSA key in a JWKS file."""
    write_keys(root, "HS256")
    write_keys(root, "ES256")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwks = root / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "rsa-1", "alg": "RS256", "use": "sig"}]}))
    return Keys(root / HMAC_FILE, root / ES256_PRIVATE, root / ES256_PUBLIC, key, jwks, root)


def claims(scopes: str = "*", **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "sub": "tester",
        "scope": scopes,
        "iat": now,
        "exp": now + 600,
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def hs256(keys: Keys, scopes: str = "*", **extra: Any) -> str:
    return jwt.encode(claims(scopes, **extra), keys.secret, algorithm="HS256")


def es256(keys: Keys, scopes: str = "*", **extra: Any) -> str:
    private = serialization.load_pem_private_key(keys.es_private.read_bytes(), None)
    return jwt.encode(claims(scopes, **extra), private, algorithm="ES256")


def rs256(keys: Keys, scopes: str = "*", **extra: Any) -> str:
    return jwt.encode(
        claims(scopes, **extra), keys.rsa_private, algorithm="RS256", headers={"kid": "rsa-1"}
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_signed(header: dict[str, Any], payload: dict[str, Any], hmac_key: bytes | None) -> str:
    """A token PyJWT would refuse to make: `alg: none`, or HS256 keyed with a public PEM."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = b""
    if hmac_key is not None:
        signature = hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def rpc_of(path: str) -> Rpc:
    return next(r for r in declared_rpcs() if r.path == path)


def call(
    channel: grpc.Channel, rpc: Rpc, metadata: Sequence[tuple[str, str]] | None = None
) -> grpc.StatusCode:
    """One call with an empty request (a valid body for every message type): its status code.
    An endless stream that passes is cancelled after its first response (OK), or runs into
    STREAM_WAIT_S (DEADLINE_EXCEEDED), which still says it was neither refused."""
    md = list(metadata or ())
    try:
        if rpc.kind == "unary":
            channel.unary_unary(rpc.path)(b"", metadata=md, timeout=CALL_TIMEOUT_S)
        elif rpc.kind == "client_stream":
            channel.stream_unary(rpc.path)(iter([b""]), metadata=md, timeout=CALL_TIMEOUT_S)
        elif rpc.kind == "bidi_stream":
            for _ in channel.stream_stream(rpc.path)(
                iter([b""]), metadata=md, timeout=CALL_TIMEOUT_S
            ):
                pass
        else:
            stream = channel.unary_stream(rpc.path)(b"", metadata=md, timeout=STREAM_WAIT_S)
            for _ in stream:
                stream.cancel()
                break
    except grpc.RpcError as err:
        return err.code()  # type: ignore[attr-defined]
    return grpc.StatusCode.OK


def refusal(call_it: Any) -> tuple[grpc.RpcError, status_pb2.Status]:
    """Run `call_it`, which must fail; the error and its google.rpc status."""
    with pytest.raises(grpc.RpcError) as info:
        call_it()
    err = info.value
    status = status_pb2.Status()
    for key, value in err.trailing_metadata() or ():  # type: ignore[attr-defined]
        if key == "grpc-status-details-bin":
            status.ParseFromString(value)
    return err, status


def detail(status: status_pb2.Status, kind: type) -> Any:
    """The one detail of type `kind` in `status` (None if there is none)."""
    for packed in status.details:
        message = kind()
        if packed.Unpack(message):
            return message
    return None


def error_info(status: status_pb2.Status) -> error_details_pb2.ErrorInfo | None:
    return detail(status, error_details_pb2.ErrorInfo)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return make_keys(tmp_path_factory.mktemp("keys"))


def serve(tmp_path_factory: pytest.TempPathFactory, args: Sequence[str]) -> Iterator[RunningServer]:
    """A server on an empty artifacts root (calls that pass find no model: UNAVAILABLE)."""
    server = launch(tmp_path_factory.mktemp("artifacts"), tmp_path_factory.mktemp("data"), args)
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="module")
def auth_server(keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    yield from serve(tmp_path_factory, keys.server_args())

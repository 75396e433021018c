"""Bearer tokens against a real server: each key source verifies its own tokens, and every bad
token is the same UNAUTHENTICATED, whatever part of it failed."""

from __future__ import annotations

import base64
import json
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from crm.v1 import model_pb2, model_pb2_grpc
from server.errors import ERROR_DOMAIN, UNAUTHENTICATED_MESSAGE
from server.security.mint import ES256_PRIVATE, ES256_PUBLIC
from tests.helpers import sample, scrape
from tests.security.auth_fixtures import (
    AUDIENCE,
    ISSUER,
    Keys,
    auth_server,  # noqa: F401  (a fixture)
    bearer,
    claims,
    error_info,
    es256,
    hand_signed,
    hs256,
    keys,  # noqa: F401  (a fixture)
    refusal,
    rs256,
)
from tests.serverproc import REPO, RunningServer


def _list_models(server: RunningServer, token: str | None) -> model_pb2.ListModelsResponse:
    stub = model_pb2_grpc.ModelServiceStub(server.channel)
    metadata = bearer(token) if token is not None else None
    return stub.ListModels(model_pb2.ListModelsRequest(), metadata=metadata, timeout=10)


def _tampered(token: str) -> str:
    """The payload re-encoded with scope `*` and the original signature kept."""
    header, payload, signature = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["scope"] = "*"
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda k: hs256(k, "score"), id="HS256 secret file"),
        pytest.param(lambda k: es256(k, "score"), id="ES256 public PEM"),
        pytest.param(lambda k: rs256(k, "score"), id="RS256 from the JWKS file"),
        pytest.param(lambda k: hs256(k, None, scp=["score"]), id="scp list claim"),
        pytest.param(lambda k: hs256(k, "score", exp=int(time.time()) - 10), id="within leeway"),
        pytest.param(lambda k: hs256(k, "score", tenant="acme-1"), id="tenant claim"),
    ],
)
def test_good_tokens_pass(
    auth_server: RunningServer,  # noqa: F811
    keys: Keys,  # noqa: F811
    make: Callable[[Keys], str],
) -> None:
    _list_models(auth_server, make(keys))


def _bad_tokens() -> list:
    # Times are read when a token is made, not when the tests are collected (a long run would
    # otherwise reach a "not yet valid" token's nbf before the test uses it).
    return [
        pytest.param(lambda k: hs256(k, exp=int(time.time()) - 120), id="expired"),
        pytest.param(lambda k: hs256(k, nbf=int(time.time()) + 120), id="not yet valid"),
        pytest.param(lambda k: hs256(k, aud="someone-else"), id="wrong audience"),
        pytest.param(lambda k: hs256(k, aud=None), id="no audience"),
        pytest.param(lambda k: hs256(k, iss="https://evil.test"), id="wrong issuer"),
        pytest.param(lambda k: hs256(k, exp=None), id="no exp"),
        pytest.param(lambda k: hs256(k, sub=None), id="no sub"),
        pytest.param(lambda k: hs256(k, tenant="../other"), id="tenant not a safe name"),
        pytest.param(
            lambda k: jwt.encode(claims(), b"another secret of more than 32 bytes!!", "HS256"),
            id="wrong key",
        ),
        pytest.param(
            lambda k: hand_signed({"alg": "none", "typ": "JWT"}, claims(), None), id="alg none"
        ),
        pytest.param(
            lambda k: hand_signed(
                {"alg": "HS256", "typ": "JWT"}, claims(), k.es_public.read_bytes()
            ),
            id="HS256 keyed with the public PEM",
        ),
        pytest.param(lambda k: _tampered(hs256(k, "score")), id="tampered payload"),
        pytest.param(lambda k: _tampered(es256(k, "score")), id="tampered ES256 payload"),
        pytest.param(lambda k: "not.a.jwt", id="garbage"),
        pytest.param(lambda k: "", id="empty"),
    ]


@pytest.mark.parametrize("make", _bad_tokens())
def test_bad_tokens_are_one_and_the_same_refusal(
    auth_server: RunningServer,  # noqa: F811
    keys: Keys,  # noqa: F811
    make: Callable[[Keys], str],
) -> None:
    err, status = refusal(lambda: _list_models(auth_server, make(keys)))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert err.details() == UNAUTHENTICATED_MESSAGE
    info = error_info(status)
    assert info is not None and (info.reason, info.domain) == ("UNAUTHENTICATED", ERROR_DOMAIN)
    assert len(status.details) == 1


def test_other_schemes_and_no_metadata_are_refused(auth_server: RunningServer) -> None:  # noqa: F811
    stub = model_pb2_grpc.ModelServiceStub(auth_server.channel)
    for metadata in (None, [("authorization", "Basic dXNlcjpwYXNz")]):
        err, _ = refusal(
            lambda md=metadata: stub.ListModels(
                model_pb2.ListModelsRequest(), metadata=md, timeout=10
            )
        )
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        assert err.details() == UNAUTHENTICATED_MESSAGE


def test_refusals_are_counted_with_their_code(
    auth_server: RunningServer,  # noqa: F811
    keys: Keys,  # noqa: F811
) -> None:
    def handled(code: str) -> float:
        return sample(
            scrape(auth_server.metrics_url),
            "grpc_server_handled_total",
            grpc_method="ReloadModels",
            grpc_code=code,
        )

    before = {c: handled(c) for c in ("UNAUTHENTICATED", "PERMISSION_DENIED")}
    stub = model_pb2_grpc.ModelServiceStub(auth_server.channel)
    refusal(lambda: stub.ReloadModels(model_pb2.ReloadModelsRequest(), timeout=10))
    refusal(
        lambda: stub.ReloadModels(
            model_pb2.ReloadModelsRequest(), metadata=bearer(hs256(keys, "score")), timeout=10
        )
    )
    assert handled("UNAUTHENTICATED") == before["UNAUTHENTICATED"] + 1
    assert handled("PERMISSION_DENIED") == before["PERMISSION_DENIED"] + 1


def _server_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_keys_and_token_commands(tmp_path: Path) -> None:
    """`crm-server keys` writes 0600 keys; `crm-server token` signs what it is asked to."""
    made = _server_cli("keys", "--out", str(tmp_path), "--alg", "ES256")
    assert made.returncode == 0, made.stderr
    for name in (ES256_PRIVATE, ES256_PUBLIC):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    again = _server_cli("keys", "--out", str(tmp_path), "--alg", "ES256")
    assert again.returncode == 2  # an existing key is never overwritten
    minted = _server_cli(
        "token", "--key", str(tmp_path / ES256_PRIVATE), "--scopes", "score campaign:read",
        "--tenant", "acme", "--ttl", "60", "--sub", "svc", "--issuer", ISSUER,
        "--audience", AUDIENCE,
    )  # fmt: skip
    assert minted.returncode == 0, minted.stderr
    public = serialization.load_pem_public_key((tmp_path / ES256_PUBLIC).read_bytes())
    got = jwt.decode(
        minted.stdout.strip(), public, algorithms=["ES256"], audience=AUDIENCE, issuer=ISSUER
    )
    assert (got["sub"], got["scope"], got["tenant"]) == ("svc", "score campaign:read", "acme")
    assert got["exp"] - got["iat"] == 60
    assert "keys --out DIR" in _server_cli("--help").stdout


def test_hmac_key_from_the_command_serves(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The minute-long path: keys, a server with that key, a token, a call."""
    from tests.security.auth_fixtures import serve

    assert _server_cli("keys", "--out", str(tmp_path)).returncode == 0
    key = tmp_path / "hmac.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    token = _server_cli("token", "--key", str(key), "--scopes", "score").stdout.strip()
    for server in serve(tmp_path_factory, ["--auth-hmac-secret-file", str(key)]):
        _list_models(server, token)
        err, _ = refusal(lambda s=server: _list_models(s, None))
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_short_hmac_secret_stops_the_server(tmp_path: Path) -> None:
    weak = tmp_path / "weak.key"
    weak.write_text("short\n")
    proc = _server_cli(
        "--port", "0", "--metrics-port", "-1", "--artifacts", str(tmp_path),
        "--data-dir", str(tmp_path / "data"), "--auth-hmac-secret-file", str(weak),
    )  # fmt: skip
    assert proc.returncode == 2
    assert "HMAC secret under 32 bytes" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_rotated_hmac_secret_takes_over_without_restart(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The key file is re-read when it changes (and the token cache emptied): the old secret's
    tokens stop verifying, the new one's start. Polled with a deadline: no event says when."""
    from server.security.mint import write_keys
    from tests.security.auth_fixtures import serve

    (key,) = write_keys(tmp_path / "old", "HS256")
    old_token = jwt.encode(claims("score", iss=None, aud=None), key.read_bytes().strip(), "HS256")
    for server in serve(tmp_path_factory, ["--auth-hmac-secret-file", str(key)]):
        _list_models(server, old_token)
        (new_key,) = write_keys(tmp_path / "new", "HS256")
        new_token = jwt.encode(
            claims("score", iss=None, aud=None), new_key.read_bytes().strip(), "HS256"
        )
        new_key.replace(key)
        deadline = time.monotonic() + 15
        while True:
            try:
                _list_models(server, old_token)
            except grpc.RpcError as err:
                assert err.code() == grpc.StatusCode.UNAUTHENTICATED
                break
            assert time.monotonic() < deadline, "the old secret still verifies"
            time.sleep(0.1)
        _list_models(server, new_token)


def test_mtls_identity_is_the_certificate_subject_with_its_mapped_scopes(
    pki,  # the TLS tests' CA (tests/security/conftest.py)
    keys: Keys,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """No token but a verified client certificate: the caller is its CN, with the scopes
    --mtls-scopes maps it to (here `score`: ListModels passes, ReloadModels does not)."""
    from tests.security.auth_fixtures import serve
    from tests.security.conftest import tls_args

    args = [
        *tls_args(pki, client_ca=True),
        *keys.server_args(),
        "--auth-mtls-identity", "true",
        "--mtls-scopes", "CN=crm-test-client:score;CN=someone-else:*",
    ]  # fmt: skip
    credentials = grpc.ssl_channel_credentials(
        pki.ca_pem.read_bytes(), pki.client_key.read_bytes(), pki.client_cert.read_bytes()
    )
    for server in serve(tmp_path_factory, args):
        with grpc.secure_channel(server.target, credentials) as channel:
            stub = model_pb2_grpc.ModelServiceStub(channel)
            stub.ListModels(model_pb2.ListModelsRequest(), timeout=10)
            err, _ = refusal(
                lambda s=stub: s.ReloadModels(model_pb2.ReloadModelsRequest(), timeout=10)
            )
            assert err.code() == grpc.StatusCode.PERMISSION_DENIED
            # a token, when sent, is the identity (and a bad one is refused, not ignored)
            stub.ReloadModels(
                model_pb2.ReloadModelsRequest(), metadata=bearer(hs256(keys, "admin")), timeout=10
            )
            err, _ = refusal(
                lambda s=stub: s.ListModels(
                    model_pb2.ListModelsRequest(), metadata=bearer("not.a.jwt"), timeout=10
                )
            )
            assert err.code() == grpc.StatusCode.UNAUTHENTICATED

"""The scope table covers every RPC, and a real server enforces it on every one of them."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.errors import ERROR_DOMAIN
from server.security.scopes import (
    ADMIN,
    ALL,
    OPEN,
    REFLECTION,
    SCOPE_OF,
    SCORE,
    UNLISTED,
    grants,
    required_scope,
)
from tests.fuzz.harness import declared_rpcs
from tests.security.auth_fixtures import (
    auth_server,  # noqa: F401  (a fixture)
    bearer,
    call,
    hs256,
    keys,  # noqa: F401  (a fixture)
    refusal,
    rpc_of,
    serve,
)
from tests.security.auth_fixtures import error_info as info_of
from tests.serverproc import RunningServer

GUARDED = sorted(p for p, s in SCOPE_OF.items() if s not in (OPEN, REFLECTION))
REFUSED = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


def test_every_method_of_every_registered_service_is_in_the_table() -> None:
    """From the descriptors of crm.v1, health and reflection (v1alpha and v1): a new RPC
    without a decided scope fails here (and is refused for everyone by the server)."""
    declared = {rpc.path for rpc in declared_rpcs()}
    assert declared == set(SCOPE_OF), declared ^ set(SCOPE_OF)


def test_grants() -> None:
    assert grants(frozenset({SCORE}), SCORE)
    assert not grants(frozenset({SCORE}), ADMIN)
    assert grants(frozenset({ALL}), ADMIN)
    assert grants(frozenset(), OPEN)
    assert not grants(frozenset({ALL, UNLISTED}), UNLISTED)
    assert required_scope("/crm.v1.Nope/Nope", False) == UNLISTED
    reflection = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
    assert required_scope(reflection, False) == ADMIN
    assert required_scope(reflection, True) == OPEN


def _other_scope(needed: str) -> str:
    return "alerts" if needed == SCORE else SCORE


@pytest.mark.parametrize("path", GUARDED)
def test_no_token_is_unauthenticated(auth_server: RunningServer, path: str) -> None:  # noqa: F811
    rpc = rpc_of(path)
    assert call(auth_server.channel, rpc) == grpc.StatusCode.UNAUTHENTICATED
    if rpc.kind == "unary":
        _, status = refusal(lambda: auth_server.channel.unary_unary(path)(b"", timeout=10))
        info = info_of(status)
        assert info is not None and info.domain == ERROR_DOMAIN


@pytest.mark.parametrize("path", GUARDED)
def test_wrong_scope_is_permission_denied_naming_the_scope(
    auth_server: RunningServer,  # noqa: F811
    keys,  # noqa: F811
    path: str,
) -> None:
    needed = SCOPE_OF[path]
    rpc = rpc_of(path)
    token = hs256(keys, _other_scope(needed))
    assert call(auth_server.channel, rpc, bearer(token)) == grpc.StatusCode.PERMISSION_DENIED
    if rpc.kind == "unary":
        err, status = refusal(
            lambda: auth_server.channel.unary_unary(path)(b"", metadata=bearer(token), timeout=10)
        )
        info = info_of(status)
        assert info is not None
        assert (info.reason, info.domain, dict(info.metadata)) == (
            "MISSING_SCOPE",
            ERROR_DOMAIN,
            {"scope": needed},
        )
        assert needed in err.details()


@pytest.mark.parametrize("path", GUARDED)
def test_right_scope_passes(auth_server: RunningServer, keys, path: str) -> None:  # noqa: F811
    code = call(auth_server.channel, rpc_of(path), bearer(hs256(keys, SCOPE_OF[path])))
    assert code not in REFUSED


def test_health_needs_no_credentials(auth_server: RunningServer) -> None:  # noqa: F811
    health = health_pb2_grpc.HealthStub(auth_server.channel)
    reply = health.Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    health.List(health_pb2.HealthListRequest(), timeout=10)
    watch = health.Watch(health_pb2.HealthCheckRequest(), timeout=10)
    assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
    watch.cancel()


REFLECTION_PATHS = sorted(p for p, s in SCOPE_OF.items() if s == REFLECTION)


@pytest.mark.parametrize("path", REFLECTION_PATHS)
def test_reflection_needs_admin(auth_server: RunningServer, keys, path: str) -> None:  # noqa: F811
    rpc = rpc_of(path)
    channel = auth_server.channel
    assert call(channel, rpc) == grpc.StatusCode.UNAUTHENTICATED
    assert call(channel, rpc, bearer(hs256(keys, SCORE))) == grpc.StatusCode.PERMISSION_DENIED
    assert call(channel, rpc, bearer(hs256(keys, ADMIN))) is grpc.StatusCode.OK


@pytest.fixture(scope="module")
def open_reflection_server(
    keys,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningServer]:
    yield from serve(tmp_path_factory, [*keys.server_args(), "--open-reflection", "true"])


@pytest.mark.parametrize("path", REFLECTION_PATHS)
def test_reflection_open_when_configured(open_reflection_server: RunningServer, path: str) -> None:
    assert call(open_reflection_server.channel, rpc_of(path)) is grpc.StatusCode.OK
    # and only reflection: the rest still needs a token
    churn = rpc_of("/crm.v1.ChurnService/PredictChurn")
    assert call(open_reflection_server.channel, churn) == grpc.StatusCode.UNAUTHENTICATED

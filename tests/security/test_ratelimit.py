"""Rate limits: the bucket arithmetic on an injected clock, then a real server tripping a limit
with QuotaFailure and RetryInfo, and taking calls again once the RetryInfo delay has passed."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
from google.rpc import error_details_pb2

from crm.v1 import model_pb2, model_pb2_grpc
from server.errors import ResourceExhausted
from server.security.principal import Principal
from server.security.ratelimit import Rate, RateLimiter, parse_rate_limits
from tests.helpers import sample, scrape
from tests.security.auth_fixtures import (
    bearer,
    detail,
    hs256,
    keys,  # noqa: F401  (a fixture)
    refusal,
    serve,
)
from tests.serverproc import RunningServer

ALICE = Principal("alice", "acme", frozenset({"score"}))
BOB = Principal("bob", "acme", frozenset({"score"}))
SOLO = Principal("solo", None, frozenset({"score"}))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_parse() -> None:
    assert parse_rate_limits("score=200/s:400,campaign:write=5/s:10") == {
        "score": Rate(200, 400),
        "campaign:write": Rate(5, 10),
    }
    assert parse_rate_limits("admin=6/m") == {"admin": Rate(0.1, 1)}
    for bad in ("score", "score=5", "score=5/h:1", "score=0/s:1", "score=5/s:0", "=5/s"):
        with pytest.raises(ValueError):
            parse_rate_limits(bad)


def test_burst_then_refill_with_the_retry_delay() -> None:
    clock = Clock()
    limiter = RateLimiter({"score": Rate(2, 3)}, clock)
    for _ in range(3):
        limiter.take(SOLO, "score")
    with pytest.raises(ResourceExhausted) as info:
        limiter.take(SOLO, "score")
    assert info.value.subject == "caller:solo/score"
    assert info.value.retry_after == pytest.approx(0.5)
    clock.now += 0.49
    with pytest.raises(ResourceExhausted):
        limiter.take(SOLO, "score")
    clock.now += 0.02
    limiter.take(SOLO, "score")
    limiter.take(SOLO, "other scope")  # not limited


def test_tenant_bucket_is_shared_and_a_refusal_takes_nothing() -> None:
    clock = Clock()
    limiter = RateLimiter({"score": Rate(1, 2)}, clock)
    limiter.take(ALICE, "score")
    limiter.take(BOB, "score")
    with pytest.raises(ResourceExhausted) as info:
        limiter.take(ALICE, "score")
    assert info.value.subject == "tenant:acme/score"
    # the refused call took no token from alice's own bucket: one second refills the tenant
    clock.now += 1.0
    limiter.take(ALICE, "score")


def test_buckets_are_bounded() -> None:
    clock = Clock()
    limiter = RateLimiter({"score": Rate(1, 1)}, clock, max_buckets=10)
    for i in range(100):
        limiter.take(Principal(f"c{i}", None, frozenset()), "score")
    assert len(limiter._buckets) == 10
    # the oldest was evicted: it is full again (errs towards letting a call through)
    limiter.take(Principal("c0", None, frozenset()), "score")


@pytest.fixture(scope="module")
def limited_server(
    keys,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningServer]:
    yield from serve(tmp_path_factory, [*keys.server_args(), "--rate-limits", "score=2/s:3"])


def test_limit_trips_and_recovers(limited_server: RunningServer, keys) -> None:  # noqa: F811
    stub = model_pb2_grpc.ModelServiceStub(limited_server.channel)
    md = bearer(hs256(keys, "score", sub="limited", tenant="acme"))

    def list_models() -> None:
        stub.ListModels(model_pb2.ListModelsRequest(), metadata=md, timeout=10)

    for _ in range(3):
        list_models()
    err, status = refusal(list_models)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    quota = detail(status, error_details_pb2.QuotaFailure)
    assert quota is not None and quota.violations[0].subject == "tenant:acme/score"
    retry = detail(status, error_details_pb2.RetryInfo)
    assert retry is not None
    delay = retry.retry_delay.ToNanoseconds() / 1e9
    assert 0 < delay <= 0.5
    handled = sample(
        scrape(limited_server.metrics_url),
        "grpc_server_handled_total",
        grpc_method="ListModels",
        grpc_code="RESOURCE_EXHAUSTED",
    )
    assert handled >= 1
    # Recovers: from the RetryInfo delay on, poll with a deadline (no event says "refilled").
    time.sleep(delay)
    deadline = time.monotonic() + 5
    while True:
        try:
            list_models()
            break
        except grpc.RpcError as again:
            assert again.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert time.monotonic() < deadline, "the limit did not recover"
            time.sleep(0.05)

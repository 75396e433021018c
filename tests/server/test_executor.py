"""Dynamic batching on a real ONNX model: same answers as unbatched, merged under load."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from server.errors import DeadlineExceeded
from server.metrics import ServerMetrics
from server.models.artifact import LoadedArtifact
from server.models.executor import BatchingConfig, LaneState, ModelExecutor
from server.models.inflight import OVERLAP_MEMORY_S, InFlight
from server.models.registry import ModelRegistry
from tests.factories import make_onnx_artifact

N_FEATURES = 4
SETTLE_S = 30.0  # how long a test waits for a state the executor signals before it fails


@pytest.fixture
def loaded(tmp_path: Path) -> tuple[LoadedArtifact, ServerMetrics]:
    make_onnx_artifact(tmp_path, "churn", n_features=N_FEATURES)
    metrics = ServerMetrics()
    registry = ModelRegistry(tmp_path, metrics)
    registry.reload()
    return registry.get("churn"), metrics


def _histogram_count(metrics: ServerMetrics, name: str) -> float:
    return (
        metrics.registry.get_sample_value(f"{name}_count", {"model": "churn", "version": "1"}) or 0
    )


@pytest.mark.parametrize("delay_us", [0, 300], ids=["no-delay", "leaders-wait"])
def test_concurrent_mixed_requests_match_unbatched(loaded, delay_us: int) -> None:
    artifact, metrics = loaded
    in_flight = InFlight()
    for _ in range(16):
        in_flight.enter()  # the calls below, as the interceptor would count them
    executor = ModelExecutor(
        metrics,
        BatchingConfig(max_batch_rows=256, max_queue_delay_us=delay_us),
        in_flight=in_flight,
    )
    rng = np.random.default_rng(7)
    requests = [
        rng.normal(size=(int(rng.integers(1, 40)), N_FEATURES)).astype(np.float32)
        for _ in range(400)
    ]
    expected = [artifact.model.run(x)["probabilities"] for x in requests]
    calls_before = _histogram_count(metrics, "crm_batch_rows")
    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(lambda x: executor.run(artifact, x)["probabilities"], requests))
    for want, have in zip(expected, got, strict=True):
        assert have.shape == want.shape
        np.testing.assert_array_equal(have, want)  # same rows, same order, bit for bit
    model_calls = _histogram_count(metrics, "crm_batch_rows") - calls_before
    assert model_calls < len(requests), "no request was ever merged with another"


def _queue_wait_sum(metrics: ServerMetrics) -> float:
    return (
        metrics.registry.get_sample_value(
            "crm_batch_queue_wait_seconds_sum", {"model": "churn", "version": "1"}
        )
        or 0.0
    )


LONG_DELAY_US = 2_000_000  # far longer than any run here: waiting it out is unmistakable


def test_lone_request_runs_at_once_even_with_a_queue_delay(loaded) -> None:
    artifact, metrics = loaded
    in_flight = InFlight()
    executor = ModelExecutor(
        metrics, BatchingConfig(max_queue_delay_us=LONG_DELAY_US), in_flight=in_flight
    )
    in_flight.enter()  # this call, the only one the server is handling
    x = np.ones((1, N_FEATURES), dtype=np.float32)
    got = executor.run(artifact, x)
    np.testing.assert_array_equal(got["probabilities"], artifact.model.run(x)["probabilities"])
    assert _queue_wait_sum(metrics) < 0.5, "a lone request waited for company"


@pytest.mark.parametrize(
    ("calls_before", "ended_before", "second_enters", "preferred_rows"),
    [
        (2, 0, False, 64),  # both calls in flight: once both are in the batch, none can come
        (3, 0, False, 2),  # a third call elsewhere: the batch ends at its preferred size
        (2, 1, True, 64),  # two overlapped a moment ago, so even a lone leader waits
    ],
    ids=["everyone-in-flight-joined", "preferred-rows-reached", "overlapped-moments-ago"],
)
def test_a_leader_waits_for_company_and_merges_with_it(
    loaded, calls_before: int, ended_before: int, second_enters: bool, preferred_rows: int
) -> None:
    """Under load most calls wait in gRPC's core, not in a handler, so the count in flight is
    mostly 1: a recent overlap of two calls is what tells load from a sequential client."""
    artifact, metrics = loaded
    in_flight = InFlight()
    executor = ModelExecutor(
        metrics,
        BatchingConfig(max_queue_delay_us=LONG_DELAY_US, preferred_batch_rows=preferred_rows),
        in_flight=in_flight,
    )
    for _ in range(calls_before):
        in_flight.enter()  # as the interceptor counts calls
    for _ in range(ended_before):
        in_flight.leave()
    first, second = (np.full((1, N_FEATURES), v, dtype=np.float32) for v in (1.0, 2.0))
    results: dict[str, dict[str, np.ndarray]] = {}
    leader = threading.Thread(target=lambda: results.update(first=executor.run(artifact, first)))
    leader.start()
    assert executor.wait_for_lane(artifact, lambda s: s.leader_waiting, SETTLE_S), (
        "the leader ran alone although calls overlapped"
    )
    if second_enters:
        in_flight.enter()
    t0 = time.monotonic()
    results["second"] = executor.run(artifact, second)  # queued until the leader runs both
    leader.join()
    waited = time.monotonic() - t0
    assert waited < LONG_DELAY_US / 2e6, (
        f"the leader kept waiting ({waited:.2f} s) after its batch was complete"
    )
    together = artifact.model.run(np.concatenate([first, second]))["probabilities"]
    np.testing.assert_array_equal(results["first"]["probabilities"], together[:1])
    np.testing.assert_array_equal(results["second"]["probabilities"], together[1:])
    labels = {"model": "churn", "version": "1"}
    assert metrics.registry.get_sample_value("crm_batch_rows_count", labels) == 1
    assert metrics.registry.get_sample_value("crm_batch_rows_sum", labels) == 2


def test_a_lone_call_runs_at_once_once_the_overlap_is_old_news(loaded) -> None:
    artifact, metrics = loaded
    in_flight = InFlight()
    executor = ModelExecutor(
        metrics, BatchingConfig(max_queue_delay_us=LONG_DELAY_US), in_flight=in_flight
    )
    in_flight.enter()
    in_flight.enter()
    in_flight.leave()
    time.sleep(OVERLAP_MEMORY_S * 2)  # not a hand-off between threads: the clock InFlight reads
    assert not in_flight.concurrent()
    executor.run(artifact, np.ones((1, N_FEATURES), dtype=np.float32))
    assert _queue_wait_sum(metrics) < 0.5, "a lone call waited for company"


def test_a_leader_waits_no_longer_than_its_queue_delay(loaded) -> None:
    artifact, metrics = loaded
    delay_s = 0.2
    in_flight = InFlight()
    executor = ModelExecutor(
        metrics, BatchingConfig(max_queue_delay_us=int(delay_s * 1e6)), in_flight=in_flight
    )
    in_flight.enter()
    in_flight.enter()  # another call in flight, which never reaches this model
    x = np.ones((1, N_FEATURES), dtype=np.float32)
    t0 = time.monotonic()
    got = executor.run(artifact, x)
    waited = time.monotonic() - t0
    np.testing.assert_array_equal(got["probabilities"], artifact.model.run(x)["probabilities"])
    assert delay_s * 0.9 <= waited < delay_s * 5, f"waited {waited:.3f} s for a {delay_s} s delay"


def _hold_lane(
    executor: ModelExecutor, artifact: LoadedArtifact, big: np.ndarray
) -> threading.Thread:
    """Run `big` on a thread; return once its batch holds the lane, so the next call queues."""
    blocker = threading.Thread(target=executor.run, args=(artifact, big))
    blocker.start()
    assert executor.wait_for_lane(artifact, lambda s: s.busy, SETTLE_S), "no batch took the lane"
    return blocker


def test_deadline_expiring_in_the_queue_is_not_run(loaded) -> None:
    artifact, metrics = loaded
    executor = ModelExecutor(metrics, BatchingConfig(max_batch_rows=10_000_000))
    big = np.random.default_rng(0).normal(size=(3_000_000, N_FEATURES)).astype(np.float32)
    blocker = _hold_lane(executor, artifact, big)
    rows_before = metrics.registry.get_sample_value(
        "crm_model_rows_scored_total", {"model": "churn", "version": "1"}
    )
    with pytest.raises(DeadlineExceeded):
        executor.run(artifact, np.zeros((1, N_FEATURES), dtype=np.float32), timeout=0.001)
    blocker.join()
    rows_after = metrics.registry.get_sample_value(
        "crm_model_rows_scored_total", {"model": "churn", "version": "1"}
    )
    assert rows_after - rows_before == big.shape[0], "the expired row was scored anyway"
    # and the lane is free again
    assert executor.run(artifact, np.zeros((2, N_FEATURES), dtype=np.float32))[
        "probabilities"
    ].shape == (2, 2)


def test_a_failing_batch_fails_its_callers_only(loaded) -> None:
    artifact, metrics = loaded
    executor = ModelExecutor(metrics)
    bad = np.zeros((3, N_FEATURES + 1), dtype=np.float32)  # wrong width: onnxruntime refuses
    with pytest.raises(Exception, match=r"(?i)dimension|shape|index"):
        executor.run(artifact, bad)
    good = np.ones((5, N_FEATURES), dtype=np.float32)
    np.testing.assert_array_equal(
        executor.run(artifact, good)["probabilities"], artifact.model.run(good)["probabilities"]
    )


def test_per_model_max_rows_bounds_every_merged_batch(loaded) -> None:
    artifact, metrics = loaded
    executor = ModelExecutor(
        metrics, BatchingConfig(max_batch_rows=1024), {"churn": BatchingConfig(max_batch_rows=8)}
    )
    rows = [np.full((3, N_FEATURES), i, dtype=np.float32) for i in range(300)]
    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(lambda x: executor.run(artifact, x)["probabilities"], rows))
    for x, have in zip(rows, got, strict=True):
        np.testing.assert_array_equal(have, artifact.model.run(x)["probabilities"])
    labels = {"model": "churn", "version": "1"}
    calls = metrics.registry.get_sample_value("crm_batch_rows_count", labels)
    at_most_8 = metrics.registry.get_sample_value("crm_batch_rows_bucket", {**labels, "le": "8.0"})
    assert calls == at_most_8, "a merged batch exceeded the model's max_rows"
    assert calls < len(rows), "nothing was merged"


def test_queued_request_without_a_deadline_waits_its_turn(loaded) -> None:
    """gRPC reports 'no deadline' as a huge time remaining; queueing with it must not fail."""
    artifact, metrics = loaded
    executor = ModelExecutor(metrics, BatchingConfig(max_batch_rows=10_000_000))
    big = np.random.default_rng(1).normal(size=(2_000_000, N_FEATURES)).astype(np.float32)
    blocker = _hold_lane(executor, artifact, big)
    seen: list[object] = []
    watcher = threading.Thread(target=_record_lane, args=(executor, artifact, seen))
    watcher.start()
    x = np.ones((2, N_FEATURES), dtype=np.float32)
    got = executor.run(artifact, x, timeout=1.7e10)
    blocker.join()
    watcher.join()
    assert seen == [LaneState(busy=True, queued=1, leader_waiting=False)], (
        "the request did not queue behind the batch"
    )
    np.testing.assert_array_equal(got["probabilities"], artifact.model.run(x)["probabilities"])


def _record_lane(executor: ModelExecutor, artifact: LoadedArtifact, seen: list[object]) -> None:
    """Record the lane's state once a call queues behind its batch, or the batch is over."""
    seen.append(executor.wait_for_lane(artifact, lambda s: s.queued > 0 or not s.busy, SETTLE_S))


class Interrupted(Exception):
    pass


@contextlib.contextmanager
def interrupted_when(
    executor: ModelExecutor, artifact: LoadedArtifact, until: Callable[[LaneState], bool]
) -> Iterator[None]:
    """Raise Interrupted in the main thread, as a signal handler would, once the state of
    `artifact`'s lane satisfies `until`."""

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted

    def watch() -> None:
        if executor.wait_for_lane(artifact, until, SETTLE_S):
            signal.pthread_kill(threading.main_thread().ident, signal.SIGALRM)

    previous = signal.signal(signal.SIGALRM, interrupt)
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        yield
    finally:
        watcher.join()
        signal.signal(signal.SIGALRM, previous)


def test_an_interrupted_waiter_does_not_wedge_the_lane(loaded) -> None:
    """A queued caller whose wait is interrupted must leave the lane usable for everyone."""
    artifact, metrics = loaded
    executor = ModelExecutor(metrics, BatchingConfig(max_batch_rows=10_000_000))
    big = np.random.default_rng(2).normal(size=(3_000_000, N_FEATURES)).astype(np.float32)
    blocker = _hold_lane(executor, artifact, big)  # so this (main) thread's call queues
    queued = interrupted_when(executor, artifact, lambda s: s.queued == 1)
    with pytest.raises(Interrupted), queued:
        executor.run(artifact, np.ones((1, N_FEATURES), dtype=np.float32))
    blocker.join()
    x = np.ones((3, N_FEATURES), dtype=np.float32)
    done = []
    worker = threading.Thread(target=lambda: done.append(executor.run(artifact, x)))
    worker.start()
    worker.join(timeout=10)
    assert done, "the lane is wedged"
    np.testing.assert_array_equal(done[0]["probabilities"], artifact.model.run(x)["probabilities"])


def test_an_interrupted_leader_waiting_for_company_frees_the_lane(loaded) -> None:
    """A leader interrupted while it waits for company hands its batch-mates on."""
    artifact, metrics = loaded
    in_flight = InFlight()
    for _ in range(3):  # the leader, its mate and a call elsewhere: the leader keeps waiting
        in_flight.enter()
    delay_s = 0.5  # the mate, handed the lead, waits this long for company of its own
    executor = ModelExecutor(
        metrics,
        BatchingConfig(max_queue_delay_us=int(delay_s * 1e6), preferred_batch_rows=100),
        in_flight=in_flight,
    )
    x = np.full((1, N_FEATURES), 3.0, dtype=np.float32)
    mate: list[dict[str, np.ndarray]] = []
    mate_thread = threading.Thread(target=lambda: mate.append(executor.run(artifact, x)))

    def start_mate() -> None:  # once this (main) thread leads and waits, queue behind it
        if executor.wait_for_lane(artifact, lambda s: s.leader_waiting, SETTLE_S):
            mate_thread.start()

    starter = threading.Thread(target=start_mate)
    starter.start()
    mate_queued = interrupted_when(executor, artifact, lambda s: s.leader_waiting and s.queued == 1)
    with pytest.raises(Interrupted), mate_queued:
        executor.run(artifact, np.ones((1, N_FEATURES), dtype=np.float32))
    starter.join()
    assert mate_thread.ident is not None, "the leader never waited for company"
    mate_thread.join(timeout=delay_s + 10)
    assert mate, "the queued call was stranded by its interrupted leader"
    np.testing.assert_array_equal(mate[0]["probabilities"], artifact.model.run(x)["probabilities"])


def test_leaders_of_two_models_stop_waiting_once_every_call_has_arrived(
    loaded, tmp_path: Path
) -> None:
    """A client asking churn and spend at once: neither call can join the other's batch, so
    neither leader may sleep out its delay once both have reached their models."""
    churn, metrics = loaded
    make_onnx_artifact(tmp_path / "other", "spend", n_features=N_FEATURES, seed=1)
    spend_registry = ModelRegistry(tmp_path / "other", metrics)
    spend_registry.reload()
    spend = spend_registry.get("spend")
    in_flight = InFlight()
    executor = ModelExecutor(
        metrics, BatchingConfig(max_queue_delay_us=LONG_DELAY_US), in_flight=in_flight
    )
    x = np.ones((1, N_FEATURES), dtype=np.float32)
    both_in_flight = threading.Barrier(2)
    results: dict[str, dict[str, np.ndarray]] = {}
    churn_waited: list[LaneState | None] = []

    def call(name: str, artifact: LoadedArtifact, after: LoadedArtifact | None) -> None:
        in_flight.enter()  # as the interceptor does, on the handler's thread
        try:
            both_in_flight.wait()
            if after is not None:  # churn reaches its model first and waits for company
                churn_waited.append(
                    executor.wait_for_lane(after, lambda s: s.leader_waiting, SETTLE_S)
                )
            results[name] = executor.run(artifact, x)
        finally:
            in_flight.leave()

    t0 = time.monotonic()
    threads = [
        threading.Thread(target=call, args=("churn", churn, None)),
        threading.Thread(target=call, args=("spend", spend, churn)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.monotonic() - t0
    assert churn_waited[0] is not None, "churn's leader did not wait for company"
    assert took < LONG_DELAY_US / 4e6, f"a leader slept out its delay ({took:.2f} s)"
    for name, artifact in (("churn", churn), ("spend", spend)):
        expected = artifact.model.run(x)["probabilities"]
        np.testing.assert_array_equal(results[name]["probabilities"], expected)


def test_only_a_calls_own_thread_counts_as_arrived() -> None:
    in_flight = InFlight()
    results: list[bool] = []
    worker = threading.Thread(target=lambda: results.append(in_flight.reach("spend")))
    worker.start()  # work outside any call (a stream's pool thread) is not a call arriving
    worker.join()
    in_flight.enter()
    in_flight.enter()  # two calls in flight; this thread runs one of them
    assert results == [False]
    assert in_flight.reached_elsewhere("churn") == 0
    assert in_flight.reach("spend") is True
    assert in_flight.reach("churn") is False  # once per call: its first model
    assert in_flight.reached_elsewhere("churn") == 1
    assert in_flight.reached_elsewhere("spend") == 0  # its own lane's callers are not elsewhere
    in_flight.leave()
    assert in_flight.count == 1 and in_flight.reached_elsewhere("churn") == 0

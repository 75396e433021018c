"""The per-model executor: every inference goes through here (dynamic batching lives here).

Concurrent requests for the same model version are merged into one onnxruntime call. There is
no timer: a request that finds its model idle runs at once, alone (no added latency at low
load); requests that arrive while a batch runs queue up, and when the batch finishes, the
first queued caller's thread is handed the baton and runs everything queued (up to
`max_batch_rows`) as the next batch. Each thread only ever runs a batch containing its own
request, so nobody waits on work that is not theirs.

Calls the model answers in a few microseconds run at once, never merged: a tree model's
calls of fewer than 8 rows, whose whole graph runs in C (`OnnxModel.unbatched_below`), cost
less than the hand-offs a batch would make (measured in benchmarks/README, Single customers).

With `max_queue_delay_us` > 0 a leader whose batch is below `preferred_batch_rows` waits up to
that long for more requests (Triton's max_queue_delay_microseconds / preferred_batch_size), but
only while the server's scoring calls overlap (`InFlight.concurrent`): a client that sends one
call at a time never waits. It stops early once its batch holds every call in flight (at 2-4
calls in flight that cut the mean wait from ~570 to ~150-300 us against waiting the delay out),
or once every call in flight has reached some model (a client asking churn and spend at once).
The leader sleeps on a condition that the request completing its batch, or a call reaching
another model, signals; it does not poll, because every wake-up is a GIL hand-off that the
threads it waits for would have used.

Why wait at all: one onnxruntime call on one row costs ~20-30 us in a tight loop but ~90-130 us
inside a busy server (the model's trees are out of cache again by the next call), and a batch
pays that once. The server's default delay is 500 us (measured in the README, Throughput); the
BatchingConfig default here stays 0, so an executor built without a config never waits.

A request whose deadline passes while queued gets DEADLINE_EXCEEDED without being run. An
exception in a batch fails that batch's callers only.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from prometheus_client import Counter, Histogram

from server.errors import DeadlineExceeded
from server.metrics import ServerMetrics
from server.models.artifact import LoadedArtifact
from server.models.inflight import InFlight

Outputs = dict[str, np.ndarray]
# A call without a deadline reports an astronomically large time remaining; waits that long
# overflow the platform's time_t, so anything beyond a day counts as no deadline at all.
NO_DEADLINE_BEYOND_S = 86_400.0


@dataclass(frozen=True)
class BatchingConfig:
    max_batch_rows: int = 1024
    preferred_batch_rows: int = 64
    max_queue_delay_us: int = 0


class LaneState(NamedTuple):
    """What a model lane is doing, as `ModelExecutor.wait_for_lane` shows it to tests."""

    busy: bool  # a batch runs, or its leader waits for company
    queued: int  # calls queued behind it
    leader_waiting: bool  # the leader is asleep waiting for company


class _Signal:
    """A one-shot wake-up for the one thread that waits on a job: a bare lock, held until
    `set`. threading.Event does the same through a Condition, a lock allocated per wait and a
    waiter list; on the hot path (most calls under load queue once) that costs ~6 us a
    hand-off and ~2 us to create. A successful `wait` consumes the signal."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def set(self) -> None:
        """Once per signal: a second set raises RuntimeError (lock released twice)."""
        self._lock.release()

    def wait(self, timeout: float | None = None) -> bool:
        return self._lock.acquire(True, -1 if timeout is None else timeout)


class _Job:
    __slots__ = ("batch", "deadline", "done", "enqueued", "error", "result", "x")

    def __init__(self, x: np.ndarray, deadline: float | None) -> None:
        self.x = x
        self.deadline = deadline
        self.enqueued = time.monotonic()
        self.done = _Signal()
        self.result: Outputs | None = None
        self.error: BaseException | None = None
        self.batch: list[_Job] | None = None  # set when this job's thread is handed the baton


class _Lane:
    def __init__(
        self,
        key: tuple[str, int],
        config: BatchingConfig,
        batch_rows: Histogram,
        queue_wait: Histogram,
        precomputed_rows: Counter,
    ) -> None:
        self.key = key  # (model, version)
        self.config = config
        self.batch_rows = batch_rows  # label children, resolved once per model version
        self.queue_wait = queue_wait
        self.precomputed_rows = precomputed_rows
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)  # the waiting leader's batch may be done
        self.pending: deque[_Job] = deque()
        self.waiting: list[_Job] | None = None  # the batch of a leader waiting for company
        # Set when every call in flight had reached some model: kept, because the calls that
        # reached other models may finish (and no longer count) before the leader rechecks.
        self.nobody_coming = False
        self.busy = False
        self.watched: threading.Condition | None = None  # see ModelExecutor.wait_for_lane

    def state(self) -> LaneState:
        return LaneState(self.busy, len(self.pending), self.waiting is not None)

    def changed(self) -> None:
        """Lock held, state just changed: wake whoever watches the lane (only tests do)."""
        if self.watched is not None:
            self.watched.notify_all()

    def enough(self, jobs: list[_Job] | deque[_Job], in_flight: InFlight) -> bool:
        """Company enough for a waiting leader: its preferred rows, or every call in flight
        (in this batch, or at another model already, so none is still coming)."""
        rows = sum(j.x.shape[0] for j in jobs)
        return rows >= self.config.preferred_batch_rows or (
            1 < in_flight.count <= len(jobs) + in_flight.reached_elsewhere(self.key)
        )

    def push(self, job: _Job, in_flight: InFlight) -> None:
        """Queue `job` (lock held), waking a waiting leader that it completes."""
        self.pending.append(job)
        self.changed()
        if self.waiting is not None and self.enough([*self.waiting, *self.pending], in_flight):
            self.arrived.notify()


class ModelExecutor:
    def __init__(
        self,
        metrics: ServerMetrics,
        config: BatchingConfig | None = None,
        per_model: dict[str, BatchingConfig] | None = None,
        in_flight: InFlight | None = None,
    ) -> None:
        """`in_flight`: the scoring requests in the data plane (its handlers count them
        through `in_flight.call()`); while none is counted, no leader waits."""
        self.config = config or BatchingConfig()
        self._in_flight = InFlight() if in_flight is None else in_flight
        self._per_model = dict(per_model or {})
        self._lanes: dict[tuple[str, int], _Lane] = {}
        self._lanes_lock = threading.Lock()
        self._batch_rows: Histogram = metrics.batch_rows
        self._queue_wait: Histogram = metrics.queue_wait
        self._precomputed_rows: Counter = metrics.precomputed_rows

    @property
    def in_flight(self) -> InFlight:
        return self._in_flight

    def _lane(self, artifact: LoadedArtifact) -> _Lane:
        key = (artifact.name, artifact.version)
        lane = self._lanes.get(key)
        if lane is None:
            with self._lanes_lock:
                if key not in self._lanes:
                    labels = (artifact.name, str(artifact.version))
                    self._lanes[key] = _Lane(
                        key,
                        self._per_model.get(artifact.name, self.config),
                        self._batch_rows.labels(*labels),
                        self._queue_wait.labels(*labels),
                        self._precomputed_rows.labels(*labels),
                    )
                lane = self._lanes[key]
        return lane

    def count_precomputed(self, artifact: LoadedArtifact, rows: int) -> None:
        """Count rows answered without a model run (outputs precomputed over the snapshot).
        The call has reached its model as surely as one that runs it."""
        lane = self._lane(artifact)
        self._arrive(lane)
        lane.precomputed_rows.inc(rows)

    def _arrive(self, lane: _Lane) -> None:
        if self._in_flight.reach(lane.key):
            self._wake_leaders_elsewhere(lane)

    def run(self, artifact: LoadedArtifact, x: np.ndarray, timeout: float | None = None) -> Outputs:
        """Score float32 rows [N, F] with `artifact`'s model; merges with concurrent callers."""
        lane = self._lane(artifact)
        self._arrive(lane)
        rows = x.shape[0]
        # big enough alone, or so cheap to run that merging would cost more than it saves
        if rows >= lane.config.max_batch_rows or rows < artifact.model.unbatched_below:
            lane.batch_rows.observe(rows)
            lane.queue_wait.observe(0.0)
            return artifact.model.run(x)
        if timeout is not None and timeout > NO_DEADLINE_BEYOND_S:
            timeout = None
        with lane.lock:
            queued = lane.busy
            if queued:
                job = _Job(x, None if timeout is None else time.monotonic() + timeout)
                lane.push(job, self._in_flight)
            else:
                lane.busy = True
                lane.changed()
        if not queued and not self._may_wait(lane):
            # The idle-lane fast path: run alone at once, then hand the lane on.
            try:
                lane.queue_wait.observe(0.0)
                lane.batch_rows.observe(rows)
                return artifact.model.run(x)
            finally:
                self._pass_baton(lane)
        if queued:
            self._await(lane, job)
            if job.batch is None:  # someone else's batch carried this job
                return self._outcome(job)
            batch, wait = job.batch, self._may_wait(lane)  # handed the baton: lead the next
        else:
            job = _Job(x, None if timeout is None else time.monotonic() + timeout)
            batch, wait = [job], True
            job.batch = batch
        if wait:
            try:
                self._wait_for_company(lane, batch)
            except BaseException:
                self._abandon(lane, job)
                raise
        self._execute(artifact, lane, batch)
        return self._outcome(job)

    def _wake_leaders_elsewhere(self, mine: _Lane) -> None:
        """A call reached `mine`: a leader waiting in another lane may now have every call in
        flight accounted for, and must not sleep out its delay."""
        for lane in list(self._lanes.values()):
            if lane is mine or lane.waiting is None:
                continue
            with lane.lock:
                if lane.waiting is not None and lane.enough(lane.waiting, self._in_flight):
                    lane.nobody_coming = True
                    lane.arrived.notify()

    def _await(self, lane: _Lane, job: _Job) -> None:
        remaining = None if job.deadline is None else max(job.deadline - time.monotonic(), 0.0)
        try:
            if job.done.wait(remaining):
                return
        except BaseException:
            self._abandon(lane, job)
            raise
        with lane.lock:
            if job in lane.pending:
                lane.pending.remove(job)
                lane.changed()
                raise DeadlineExceeded("deadline expired while queued for the model")
        job.done.wait()  # already taken into a batch: its result is moments away

    def _abandon(self, lane: _Lane, job: _Job) -> None:
        """A waiter failed (interrupted): never leave its job where it would wedge the lane.

        Still queued: drop it. Handed the baton meanwhile: give its batch-mates back to the
        queue and pass the baton on, so someone else runs them.
        """
        with lane.lock:
            if job in lane.pending:
                lane.pending.remove(job)
                lane.changed()
                return
            if job.batch is None:
                return  # carried by another leader's batch; its result is simply unused
            lane.pending.extendleft(reversed([j for j in job.batch if j is not job]))
            job.batch = None
        self._pass_baton(lane)

    def _may_wait(self, lane: _Lane) -> bool:
        return lane.config.max_queue_delay_us > 0 and self._in_flight.concurrent()

    def _wait_for_company(self, lane: _Lane, batch: list[_Job]) -> None:
        """Fill `batch` from the queue, sleeping until it has company enough (`_Lane.enough`,
        or news that every other call reached another model) or the queue delay has passed."""
        until = time.monotonic() + lane.config.max_queue_delay_us / 1e6
        with lane.lock:
            try:
                while True:
                    self._take(lane, batch)
                    left = until - time.monotonic()
                    if (
                        left <= 0
                        or lane.pending
                        or lane.nobody_coming
                        or lane.enough(batch, self._in_flight)
                    ):
                        return  # out of time, the next job does not fit, or company enough
                    lane.waiting = batch
                    lane.changed()
                    lane.arrived.wait(left)
            finally:
                lane.waiting = None
                lane.nobody_coming = False
                lane.changed()

    def _take(self, lane: _Lane, batch: list[_Job]) -> None:
        """Move queued jobs into `batch` up to max_batch_rows (caller holds lane.lock)."""
        rows = sum(j.x.shape[0] for j in batch)
        while lane.pending and rows + lane.pending[0].x.shape[0] <= lane.config.max_batch_rows:
            job = lane.pending.popleft()
            rows += job.x.shape[0]
            batch.append(job)

    def _execute(self, artifact: LoadedArtifact, lane: _Lane, batch: list[_Job]) -> None:
        now = time.monotonic()
        live: list[_Job] = []
        for job in batch:
            if job.deadline is not None and now > job.deadline:
                job.error = DeadlineExceeded("deadline expired while queued for the model")
            else:
                live.append(job)
                lane.queue_wait.observe(now - job.enqueued)
        try:
            if live:
                x = live[0].x if len(live) == 1 else np.concatenate([j.x for j in live])
                lane.batch_rows.observe(x.shape[0])
                outputs = artifact.model.run(x)
                start = 0
                for job in live:
                    stop = start + job.x.shape[0]
                    job.result = {k: v[start:stop] for k, v in outputs.items()}
                    start = stop
        except Exception as err:  # the batch's callers see it; other batches are unaffected
            for job in live:
                job.error = err
        finally:
            self._pass_baton(lane)
            for job in batch[1:]:  # batch[0] is the leader's own job: its thread runs this
                job.done.set()

    def _pass_baton(self, lane: _Lane) -> None:
        with lane.lock:
            lane.changed()
            if not lane.pending:
                lane.busy = False
                return
            leader = lane.pending.popleft()
            leader.batch = [leader]
            self._take(lane, leader.batch)
        leader.done.set()

    def wait_for_lane(
        self,
        artifact: LoadedArtifact,
        until: Callable[[LaneState], bool],
        timeout: float,
    ) -> LaneState | None:
        """Test hook: block until `until(state of artifact's lane)` holds and return that
        state; None on timeout.

        Tests use it to act at a known point (a batch holds the lane, a call is queued, a
        leader waits for company) instead of sleeping. Serving never calls it; a lane only
        signals its changes once something has waited on it here.
        """
        lane = self._lane(artifact)
        with lane.lock:
            if lane.watched is None:
                lane.watched = threading.Condition(lane.lock)
            if lane.watched.wait_for(lambda: until(lane.state()), timeout):
                return lane.state()
            return None

    @staticmethod
    def _outcome(job: _Job) -> Outputs:
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

"""The features by-id scoring reads: every known customer's row as of the end of the server's
current day, kept current by ingested lines (only their customers are recomputed) and by the
daily ageing (everyone, in bulk). Listeners hear of every change (proactive churn alerts)."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm.history import history_frame
from server.freshness.book import LineBook
from server.freshness.clock import Clock, day_end
from server.freshness.lines import Appended, LineStoreBase, StoredLine
from server.models.snapshot import FeatureSnapshot

log = logging.getLogger("crm.freshness")
INGESTED_LINE = "ingested_line"
DAILY_AGEING = "daily_ageing"
_ROW_CACHE = 4096  # rows at explicit as-of times kept (customer, as-of, lines seen)
_generations = itertools.count(1 << 40)  # snapshot versions never equal an artifact version


class FreshSnapshot(FeatureSnapshot):
    """A FeatureSnapshot as of `as_of_s` (its `parent` and `precomputable`: FeatureSnapshot)."""

    as_of_s: float = 0.0


def fresh_snapshot(
    ids: np.ndarray,
    values: np.ndarray,
    names: Sequence[str],
    as_of_s: float,
    *,
    index: dict[str, int] | None = None,
    parent: tuple[int, np.ndarray] | None = None,
    precomputable: bool = True,
) -> FreshSnapshot:
    iso = pd.Timestamp(as_of_s, unit="s").isoformat()
    snap = FreshSnapshot(ids, values, names, iso, next(_generations), index=index)
    snap.as_of_s, snap.parent, snap.precomputable = as_of_s, parent, precomputable
    return snap


@dataclass(frozen=True)
class Change:
    """Features that changed: `customer_ids` None means everyone (the daily ageing)."""

    before: FreshSnapshot
    after: FreshSnapshot
    customer_ids: list[str] | None
    reason: str
    at_ns: int


class FreshFeatures:
    def __init__(
        self, base: Callable[[], FeatureSnapshot | None], store: LineStoreBase, clock: Clock
    ) -> None:
        self._base = base
        self.store = store
        self.clock = clock
        self._lock = threading.RLock()
        self._book: LineBook | None = None
        self._base_version: int | None = None
        self._seq = 0
        self._current: FreshSnapshot | None = None
        self._rows: OrderedDict[tuple[str, float, int], np.ndarray | None] = OrderedDict()
        self._listeners: list[Callable[[Change], None]] = []

    def add_listener(self, callback: Callable[[Change], None]) -> None:
        self._listeners.append(callback)

    # -- reading ------------------------------------------------------------------------------
    def snapshot(self) -> FreshSnapshot | None:
        """Every customer as of the end of today; None when the features artifact shipped no
        history (the server then serves the artifact's own rows)."""
        current = self._current
        if current is not None and day_end(self.clock.now()) != current.as_of_s:
            self.age()
            current = self._current
        return current

    def snapshot_at(self, customer_ids: Sequence[str], as_of_s: float) -> FreshSnapshot | None:
        """The given customers' rows as of `as_of_s` (those with a line before it), for one call."""
        current = self.snapshot()
        if current is None or current.as_of_s == as_of_s:
            return current
        with self._lock:
            book = self._book
            assert book is not None
            seen = book.ingested_count
            found: list[str] = []
            rows: list[np.ndarray] = []
            missing = [
                c for c in dict.fromkeys(customer_ids) if (c, as_of_s, seen) not in self._rows
            ]
            if missing:
                ids, matrix = book.rows([c for c in missing if c in book], as_of_s)
                got = dict(zip(ids, matrix, strict=True))
                for c in missing:
                    self._rows[(c, as_of_s, seen)] = got.get(c)
                while len(self._rows) > _ROW_CACHE:
                    self._rows.popitem(last=False)
            for c in dict.fromkeys(customer_ids):
                row = self._rows.get((c, as_of_s, seen))
                if row is not None:
                    found.append(c)
                    rows.append(row)
        width = len(current.feature_names)
        values = np.vstack(rows) if rows else np.zeros((0, width), np.float32)
        return fresh_snapshot(
            np.asarray(found, dtype=object), values, current.feature_names, as_of_s,
            precomputable=False,
        )  # fmt: skip

    # -- changing -----------------------------------------------------------------------------
    def reload(self) -> None:
        """A registry listener: a new features artifact rebuilds the book from its history and
        every stored line (those it was retrained on are repeats of its history: dropped)."""
        base = self._base()
        with self._lock:
            if base is None or base.history is None:
                self._book, self._current, self._base_version = None, None, None
                return
            if base.version == self._base_version:
                return
            started = time.perf_counter()
            with np.load(base.history, allow_pickle=False) as data:
                book = LineBook(history_frame(data), base.feature_names)
            self._book, self._base_version, self._seq = book, base.version, 0
            self._catch_up_locked(notify=False)
            as_of = day_end(self.clock.now())
            ids, values = book.everyone(as_of)
            self._current = fresh_snapshot(ids, values, base.feature_names, as_of)
            self._rows.clear()
            log.info(
                "fresh features loaded",
                extra={
                    "customers": len(ids),
                    "ingested_lines": book.ingested_count,
                    "as_of": self._current.as_of,
                    "seconds": round(time.perf_counter() - started, 3),
                },
            )

    def age(self) -> float | None:
        """Recompute everyone as of the end of the clock's day when it moved; returns the
        seconds it took (None when nothing was due)."""
        with self._lock:
            current, book = self._current, self._book
            if current is None or book is None:
                return None
            as_of = day_end(self.clock.now())
            if as_of == current.as_of_s:
                return None
            started = time.perf_counter()
            ids, values = book.everyone(as_of)
            after = fresh_snapshot(ids, values, current.feature_names, as_of)
            self._current = after
            took = time.perf_counter() - started
        log.info(
            "features aged",
            extra={"customers": len(ids), "as_of": after.as_of, "seconds": round(took, 3)},
        )
        self._notify(Change(current, after, None, DAILY_AGEING, time.time_ns()))
        return took

    def ingest(self, lines: Sequence[StoredLine]) -> tuple[Appended, list[str], float]:
        """Store `lines` durably, then apply every stored line not applied yet (these and other
        processes'); returns what was stored, the customers of the lines stored now and the
        as-of time their features are as of."""
        appended = self.store.append(lines)
        self.catch_up()  # applies these (or finds a concurrent call already did)
        mine = dict.fromkeys(lines[i].customer_id for i in appended.accepted)
        current = self.snapshot()
        return appended, list(mine), current.as_of_s if current is not None else 0.0

    def catch_up(self) -> list[str]:
        """Apply lines other processes (or replicas) stored since the last look."""
        with self._lock:
            return self._catch_up_locked(notify=True)

    def _catch_up_locked(self, notify: bool) -> list[str]:
        book = self._book
        if book is None:
            return []
        new = self.store.all_after(self._seq)
        if not new:
            return []
        self._seq = new[-1][0]
        # a line a retrained artifact's history already holds is dropped there as a repeat
        changed = book.add([line for _, line in new])
        current = self._current
        if not changed or current is None:
            return changed
        ids, values = book.rows(changed, current.as_of_s)
        after = self.patched(current, ids, values)
        self._current = after
        if notify:
            self._notify(Change(current, after, list(ids), INGESTED_LINE, time.time_ns()))
        return changed

    @staticmethod
    def patched(current: FreshSnapshot, ids: Sequence[str], values: np.ndarray) -> FreshSnapshot:
        index = current.index
        known = [index.get(c) for c in ids]
        new = [k for k, r in enumerate(known) if r is None]
        n = len(current)
        if new:
            index = dict(index)
            for j, k in enumerate(new):
                index[ids[k]] = n + j
            all_ids = np.concatenate(
                [current.customer_ids, np.asarray([ids[k] for k in new], object)]
            )
            all_values = np.concatenate([current.values, values[new]])
        else:
            all_ids, all_values = current.customer_ids, current.values.copy()
        rows = np.array([index[c] for c in ids], dtype=np.int64)
        all_values[rows] = values
        return fresh_snapshot(
            all_ids, all_values, current.feature_names, current.as_of_s, index=index,
            parent=(current.version, rows),
        )  # fmt: skip

    def _notify(self, change: Change) -> None:
        for callback in self._listeners:
            try:
                callback(change)
            except Exception:  # a listener's failure must not undo the change
                log.exception("freshness listener failed")


class Refresher:
    """The background thread: applies lines other processes stored and ages every customer's
    features when the clock's day moves, every `interval` seconds."""

    def __init__(self, fresh: FreshFeatures, interval: float) -> None:
        self.fresh = fresh
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.interval <= 0:
            return
        self._thread = threading.Thread(target=self._run, name="fresh-features", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.fresh.catch_up()
                self.fresh.snapshot()  # ages when the day moved
            except Exception:
                log.exception("freshness refresh failed")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

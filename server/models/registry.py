"""Model registry: loads verified artifact versions, serves the highest (or pinned), hot-swaps.

A new version is loaded completely and checked (manifest, SHA-256 of every file, onnxruntime
session and a smoke inference) before one reference is swapped; callers that already hold the
old `LoadedArtifact` finish on it. A version that fails is refused, logged and counted once, and
what was serving keeps serving.

The version a model serves (its default) is the newest that loaded, unless one is pinned: by
--pin (which also stops newer versions loading) or at run time by `set_default`, which is
persisted (server.models.defaults) and re-read on every reload, so other workers and replicas
follow. Reloads still load newer versions under a run-time pin but keep serving the pinned one
and say so; a pinned version whose directory is gone is dropped (logged and reported) and the
newest serves again.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from crm.artifacts import ArtifactError, list_names, list_versions
from server.errors import FailedPrecondition, FieldViolation, NotFound, Unavailable, echo
from server.metrics import ServerMetrics
from server.models.artifact import (
    ArtifactLoader,
    LoadedArtifact,
    Loader,
    modified_stamp,
    public_reason,
)
from server.models.defaults import DefaultStoreBase, MemoryDefaultStore

log = logging.getLogger("server.models.registry")


class Outcome(Enum):
    LOADED = "loaded"
    UNCHANGED = "unchanged"
    REFUSED = "refused"


class DefaultSource(Enum):
    """Why a model serves the version it does."""

    NEWEST = "newest"
    PINNED = "pinned"


@dataclass(frozen=True)
class ReloadResult:
    name: str
    version: int
    outcome: Outcome
    reason: str = ""


@dataclass
class _Entry:
    loaded: dict[int, LoadedArtifact] = field(default_factory=dict)
    serving: int = 0
    newest: int = 0  # what the last reload would serve without a run-time pin


class ModelRegistry:
    def __init__(
        self,
        root: Path,
        metrics: ServerMetrics,
        *,
        ort_threads: int = 1,
        tree_evaluator: bool = True,
        keep_versions: int = 2,
        pins: Mapping[str, int] | None = None,
        loaders: Mapping[str, Loader] | None = None,
        defaults: DefaultStoreBase | None = None,
    ) -> None:
        """`defaults` stores run-time pins (the registry closes it); without one they last as
        long as the process."""
        self.root = Path(root)
        self._metrics = metrics
        self._loader = ArtifactLoader(metrics, ort_threads, tree_evaluator, loaders)
        self._keep = keep_versions
        self._pins = dict(pins or {})
        self._defaults = defaults if defaults is not None else MemoryDefaultStore()
        # run-time pins, as last read from or written to _defaults
        self._chosen: dict[str, int] = {}
        self._entries: dict[str, _Entry] = {}
        self._refused: dict[tuple[str, int], tuple[float, str]] = {}
        self._published: dict[str, list[tuple[str, str, str, str]]] = {}
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    # -- lookups (hot path: no lock, dict reads are atomic) --------------------------------
    def get(self, name: str, version: int = 0) -> LoadedArtifact:
        entry = self._entries.get(name)
        if entry is None or not entry.loaded:
            if entry is None and name not in list_names(self.root):
                raise NotFound(f"unknown model {echo(name)}", "model", name)
            raise Unavailable(f"model {echo(name)} is not loaded")
        wanted = version or entry.serving
        found = entry.loaded.get(wanted)
        if found is None:
            raise NotFound(
                f"model {echo(name)} version {wanted} is not loaded (loaded: {sorted(entry.loaded)})",
                "model",
                f"{name}/{wanted}",
            )
        return found

    def is_serving(self, name: str) -> bool:
        entry = self._entries.get(name)
        return bool(entry and entry.serving in entry.loaded)

    def serving(self) -> dict[str, LoadedArtifact]:
        return {n: e.loaded[e.serving] for n, e in sorted(self._entries.items()) if e.loaded}

    def loaded_versions(self, name: str) -> list[int]:
        entry = self._entries.get(name)
        return sorted(entry.loaded) if entry else []

    def default_source(self, name: str) -> DefaultSource:
        """PINNED when the served version is the one pinned (at run time or by --pin)."""
        entry = self._entries.get(name)
        if entry is None or not entry.serving:
            return DefaultSource.NEWEST
        if entry.serving in (self._chosen.get(name), self._pins.get(name)):
            return DefaultSource.PINNED
        return DefaultSource.NEWEST

    def set_default(self, name: str, version: int) -> None:
        """Serve `version` of `name` from now on, here at once and, through the store, on
        every worker and replica at their next reload. Only a loaded version can be pinned."""
        with self._lock:
            entry = self._known(name)
            if version not in entry.loaded:
                loaded = sorted(entry.loaded)
                if version in list_versions(self.root, name):
                    raise FailedPrecondition(
                        f"model {echo(name)} version {version} is not loaded (loaded: {loaded})",
                        FieldViolation("version", f"not loaded; loaded versions: {loaded}"),
                    )
                raise NotFound(
                    f"model {echo(name)} has no version {version} (loaded: {loaded})",
                    "model",
                    f"{name}/{version}",
                    FieldViolation("version", f"no such version; loaded versions: {loaded}"),
                )
            self._defaults.set(name, version)
            self._chosen = {**self._chosen, name: version}
            changed = self._serve(name, entry, version)
        log.info("default version pinned", extra={"model": name, "version": version})
        if changed:
            self._notify()

    def clear_default(self, name: str) -> None:
        """Drop a run-time pin of `name`: the newest version (or --pin's) serves again."""
        with self._lock:
            entry = self._known(name)
            self._defaults.clear(name)
            self._chosen = {k: v for k, v in self._chosen.items() if k != name}
            target = entry.newest if entry.newest in entry.loaded else max(entry.loaded, default=0)
            changed = self._serve(name, entry, target)
        log.info("default version cleared", extra={"model": name, "version": entry.serving})
        if changed:
            self._notify()

    def _known(self, name: str) -> _Entry:
        entry = self._entries.get(name)
        if entry is None or not entry.loaded:
            if entry is None and name not in list_names(self.root):
                raise NotFound(
                    f"unknown model {echo(name)}",
                    "model",
                    name,
                    FieldViolation("name", "no such model"),
                )
            raise Unavailable(f"model {echo(name)} is not loaded")
        return entry

    def _serve(self, name: str, entry: _Entry, version: int) -> bool:
        """Make `version` (loaded, or 0 for none) the one served; True when that changed."""
        if not version or version not in entry.loaded or entry.serving == version:
            return False
        entry.serving = version
        self._publish(name, entry)
        return True

    def _notify(self) -> None:
        for callback in self._listeners:
            callback()

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Called after every reload that changed what is served."""
        self._listeners.append(callback)

    # -- loading ---------------------------------------------------------------------------
    def reload(self) -> list[ReloadResult]:
        with self._lock:
            self._read_defaults()
            before = {name: entry.serving for name, entry in self._entries.items()}
            results = [r for name in list_names(self.root) for r in self._reload_one(name)]
            after = {name: entry.serving for name, entry in self._entries.items()}
        if after != before or any(r.outcome is Outcome.LOADED for r in results):
            self._notify()
        return results

    def _read_defaults(self) -> None:
        """Take up pins set through other workers or replicas; an unreadable store keeps the
        last known ones (serving must not stop because the shared store hiccups)."""
        try:
            self._chosen = self._defaults.all()
        except Exception as err:  # every tick while it lasts: no traceback each time
            log.warning(
                "cannot read the chosen default versions; keeping the last known",
                extra={"error": f"{type(err).__name__}: {err}"},
            )

    def _reload_one(self, name: str) -> list[ReloadResult]:
        entry = self._entries.setdefault(name, _Entry())
        versions = list_versions(self.root, name)
        pin = self._pins.get(name)
        candidates = [pin] if pin is not None else sorted(versions, reverse=True)
        results: list[ReloadResult] = []
        for version in candidates:
            if version in entry.loaded:
                entry.newest = version
                if not results:
                    results.append(ReloadResult(name, version, Outcome.UNCHANGED))
                break
            if version not in versions:
                reason = f"pinned version {version} does not exist"
                results.append(self._refuse(name, version, reason))
                break
            outcome = self._try_load(name, version, entry)
            results.append(outcome)
            if outcome.outcome is Outcome.LOADED:
                entry.newest = version
                break
        return self._apply_default(name, entry, versions, results)

    def _apply_default(
        self, name: str, entry: _Entry, versions: list[int], results: list[ReloadResult]
    ) -> list[ReloadResult]:
        """Serve the run-time pin if it can be served, else the newest; say what was decided
        in the results whenever it is not what a reload alone would do."""
        target = entry.newest
        chosen = self._chosen.get(name)
        note = ""
        if chosen is not None and chosen not in versions:
            note = (
                "pinned default version {pin} is gone from the artifacts: unpinned;"
                " serving the newest, version {serving}"
            )
            log.warning(
                "pinned default version gone; unpinned",
                extra={"model": name, "version": chosen},
            )
            self._chosen = {k: v for k, v in self._chosen.items() if k != name}
            self._forget(name)
        elif chosen is not None:
            if chosen not in entry.loaded:  # pinned before a restart: load it again
                loaded = self._try_load(name, chosen, entry)
                results.append(loaded)
                if loaded.outcome is Outcome.REFUSED:
                    note = (
                        "pinned default version {pin} did not load;"
                        " serving the newest, version {serving}, until it does"
                    )
            if chosen in entry.loaded:
                target = chosen
                note = "version {pin} stays the default (pinned)"
        self._serve(name, entry, target)
        if not note:
            return results
        note = note.format(pin=chosen, serving=entry.serving)
        noted = [r if r.reason else dataclasses.replace(r, reason=note) for r in results]
        if all(r.reason for r in results):
            noted.append(ReloadResult(name, entry.serving, Outcome.UNCHANGED, note))
        return noted

    def _forget(self, name: str) -> None:
        try:
            self._defaults.clear(name)
        except Exception:
            log.exception("cannot clear a pinned default version", extra={"model": name})

    def _try_load(self, name: str, version: int, entry: _Entry) -> ReloadResult:
        version_dir = self.root / name / str(version)
        stamp = modified_stamp(version_dir)
        previous = self._refused.get((name, version))
        if previous is not None and previous[0] == stamp:
            return ReloadResult(name, version, Outcome.REFUSED, previous[1])
        try:
            artifact = self._loader.load(name, version, version_dir)
        except ArtifactError as err:
            return self._refuse(name, version, str(err), stamp)
        except Exception as err:  # a loader bug must not take the registry down
            log.exception("artifact loader failed", extra={"model": name, "version": version})
            return self._refuse(name, version, f"loader failed: {err}", stamp)
        self._refused.pop((name, version), None)
        entry.loaded[version] = artifact
        if self._chosen.get(name) not in entry.loaded:  # unpinned: the new version serves
            entry.serving = version
        # never what is served now: a pin moving to an older version loads it before serving it
        kept = {self._pins.get(name), self._chosen.get(name), entry.serving}
        for old in sorted(entry.loaded)[: -self._keep]:
            if old not in kept:
                del entry.loaded[old]
        self._metrics.reloads.labels(name, "loaded").inc()
        self._publish(name, entry)
        log.info(
            "artifact loaded", extra={"model": name, "version": version, "kind": artifact.kind}
        )
        return ReloadResult(name, version, Outcome.LOADED)

    def _refuse(self, name: str, version: int, reason: str, stamp: float = 0.0) -> ReloadResult:
        """Refuse a version. The log keeps the full reason; clients (ReloadModels) get it with
        paths relative to the artifacts root and any other absolute path hidden."""
        log.error("artifact refused", extra={"model": name, "version": version, "reason": reason})
        reason = public_reason(self.root, reason)
        self._refused[(name, version)] = (stamp, reason)
        self._metrics.reloads.labels(name, "refused").inc()
        return ReloadResult(name, version, Outcome.REFUSED, reason)

    def _publish(self, name: str, entry: _Entry) -> None:
        gauge = self._metrics.model_info
        for labels in self._published.pop(name, []):  # versions no longer loaded, or demoted
            gauge.labels(*labels).set(0)  # set, not removed: multiprocess mode keeps files
        published = self._published[name] = []
        for version, artifact in entry.loaded.items():
            labels = (name, str(version), artifact.kind, str(version == entry.serving).lower())
            gauge.labels(*labels).set(1)
            published.append(labels)

    # -- watching --------------------------------------------------------------------------
    def start_watching(self, interval_seconds: float) -> None:
        if interval_seconds <= 0 or self._watcher is not None:
            return
        self._watcher = threading.Thread(
            target=self._watch, args=(interval_seconds,), name="artifact-watcher", daemon=True
        )
        self._watcher.start()

    def _watch(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.reload()
            except Exception:
                log.exception("artifact scan failed")

    def close(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        with self._lock:
            self._defaults.close()

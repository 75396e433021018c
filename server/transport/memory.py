"""Process memory set-up: glibc's malloc arenas capped before any handler thread exists, and
the start-up heap moved out of the garbage collector's sight once the server is up, with the
memory that loading freed handed back to the system.

glibc gives threads their own arenas (up to eight per core), and memory freed in one arena is
not reused by another: with 32 handler threads, a few large requests parsed on different
threads leave that many high-water marks behind. Measured with `make fuzz` (10,000 hostile
calls, bodies up to the 64 MiB message limit): RSS grew 485 MB with glibc's default and 160 MB
with two arenas. Setting MALLOC_ARENA_MAX does the same, but only when set before the process
starts; mallopt works from inside, as long as it runs before the threads allocate.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import gc
import logging
import os
import sys

M_ARENA_MAX = -8  # glibc's mallopt parameter number
DEFAULT_ARENAS = 2
log = logging.getLogger("server")


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The C library, looked up once: find_library runs `ldconfig -p` in a subprocess, which
    freeze_heap would otherwise fork from the serving process on every reload."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def cap_malloc_arenas(arenas: int = DEFAULT_ARENAS) -> bool:
    """Cap glibc's arenas (MALLOC_ARENA_MAX, when set, wins); False where there is no glibc."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    libc = _libc()
    if libc is None:
        return False
    try:
        return bool(libc.mallopt(M_ARENA_MAX, arenas))
    except AttributeError:  # not glibc: musl and others have no mallopt
        return False


def freeze_heap() -> None:
    """Move every object alive now (modules, models, snapshots: the start-up heap) to the
    collector's permanent generation.

    The cyclic collector's full passes walk every tracked object, and a serving process makes
    enough short-lived containers per call to run one every few thousand calls. Measured on
    PredictChurn by features at 64 in flight (gc.callbacks timing in a 1-worker server): 30 us
    of collector time per call before, 8-9 us after. Called after start-up and again after
    every reload that changed the models (a registry listener): unfreezing first lets one full
    collection reclaim whatever the replaced versions left in reference cycles.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    release_free_memory()


def release_free_memory() -> None:
    """Hand memory that is free but still mapped back to the system: what Arrow's pool (pandas'
    strings) and glibc's heap keep after a burst of allocations. Loading is one: building the
    fresh features from the shipped history peaks ~60 MB above what it keeps. Measured with
    the default artifacts, one worker: RSS right after start-up 267 MB without, 234 MB with."""
    arrow = sys.modules.get("pyarrow")
    if arrow is not None:
        arrow.default_memory_pool().release_unused()
    libc = _libc()
    if libc is not None:
        with contextlib.suppress(AttributeError):  # not glibc: no malloc_trim
            libc.malloc_trim(0)

"""Pinning a process to one core, shared by the server and the benchmark's echo reference.

Measured here (2 cores, h2load on the same machine): a gRPC Python process whose threads the
kernel moves between cores spends about twice the CPU per call of one held on a single core
(the GIL hand-offs between handler threads then stay in one core's caches). Pin before any
gRPC or onnxruntime thread exists, so every thread inherits the mask.
"""

from __future__ import annotations

import os


def pin_to_one_core(index: int) -> int:
    """Pin this process to usable core number `index` (modulo their count); returns the core."""
    cpus = sorted(os.sched_getaffinity(0))
    core = cpus[index % len(cpus)]
    os.sched_setaffinity(0, {core})
    return core

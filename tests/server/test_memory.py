"""server.transport.memory: free memory goes back to the system, and freezing the heap does it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# Run in a fresh interpreter: a test process's own heap history would blur the figures.
_BURST = textwrap.dedent(
    """
    import sys
    from server.transport import memory

    def rss_mb():
        with open("/proc/self/status") as f:
            return int(f.read().split("VmRSS:")[1].split()[0]) / 1024

    # ~100 MB in 2 KB blocks: glibc serves them from its heap (below the mmap threshold),
    # and the block kept afterwards sits above them, so free() alone cannot hand them back.
    blocks = [bytes(2000) for _ in range(50_000)]
    keep = bytes(2000)
    del blocks
    before = rss_mb()
    getattr(memory, sys.argv[1])()
    print(before, rss_mb())
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and /proc: Linux only")
@pytest.mark.parametrize("call", ["release_free_memory", "freeze_heap"])
def test_freed_heap_memory_is_returned(call: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _BURST, call], capture_output=True, text=True, check=True
    ).stdout
    before, after = (float(x) for x in out.split())
    assert before - after > 50, f"RSS {before:.0f} -> {after:.0f} MB"

"""The dataset digest in its own interpreter, so it runs on the second core while models train.

`crm.lineage.digest_file` is pure Python (about 40 s per million lines). The worker is a plain
`python -c` child that imports only `crm.lineage`: no re-import of the caller's __main__ (as
multiprocessing's spawn would do), and started before the trainer grows, so its memory
accounting is its own. It reads one path on stdin and answers one JSON line on stdout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from crm.lineage import DatasetDigest, DatasetFormatError

REPO_ROOT = Path(__file__).resolve().parents[1]
_SCRIPT = """
import json, resource, sys
from crm.lineage import DatasetFormatError, digest_file
path = sys.stdin.readline().strip()
if path:
    try:
        d = digest_file(path)
        answer = {"sha256": d.sha256.hex(), "merkle_root": d.merkle_root.hex(),
                  "rows": d.rows, "bytes": d.bytes}
    except (DatasetFormatError, OSError) as err:
        answer = {"error": str(err)}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    answer["max_rss_kib"] = usage.ru_maxrss
    answer["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    print(json.dumps(answer), flush=True)
"""


class LineageWorker:
    """Start early with `LineageWorker()`, then `submit(path)` once and `result()` once."""

    def __init__(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _SCRIPT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.max_rss_kib = 0
        self.cpu_seconds = 0.0

    def submit(self, path: Path) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(f"{Path(path).resolve()}\n")
        self._proc.stdin.close()

    def result(self) -> DatasetDigest:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        self._proc.wait()
        if not line:
            raise RuntimeError(f"lineage worker exited with status {self._proc.returncode}")
        answer = json.loads(line)
        self.max_rss_kib = int(answer.get("max_rss_kib", 0))
        self.cpu_seconds = float(answer.get("cpu_seconds", 0.0))
        if "error" in answer:
            raise DatasetFormatError(answer["error"])
        return DatasetDigest(
            bytes.fromhex(answer["sha256"]),
            bytes.fromhex(answer["merkle_root"]),
            int(answer["rows"]),
            int(answer["bytes"]),
        )

    def close(self) -> None:
        """Stop the worker if it is still running (a failed run does not wait for it)."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream is not None and not stream.closed:
                stream.close()

"""A real Ray head on this machine, as a Ray deployment runs one (started once, joined by each
job with `--address`): for the test and benchmark of crm-batch joining a running cluster."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class RayHead:
    address: str
    client_env: dict[str, str]  # what a process joining it needs: token authentication

    def env(self) -> dict[str, str]:
        return os.environ | self.client_env


@contextlib.contextmanager
def ray_head(cpus: int) -> Iterator[RayHead]:
    """A Ray head on this machine (`ray start --head --block`, loopback, token authentication
    with a token of its own, as the README tells a cluster's users), stopped when done. Jobs
    join it from a child process given `env()`: a process that ran Ray before keeps its auth
    settings cached."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env = os.environ | auth
    temp = tempfile.mkdtemp(prefix="ray-")
    head = subprocess.Popen(
        [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
         f"--port={port}", f"--num-cpus={cpus}", "--node-ip-address=127.0.0.1",
         "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # its own process group: the head and all it starts
    )  # fmt: skip
    started = threading.Event()

    def drain() -> None:  # read the head's output to the end, or its writes block it
        assert head.stdout is not None
        for line in head.stdout:
            if "Ray runtime started" in line:
                started.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        if not started.wait(timeout=START_TIMEOUT_S):
            raise SystemExit(f"ray start --head did not start (exit {head.poll()})")
        yield RayHead(f"127.0.0.1:{port}", auth)
    finally:
        _stop(head)
        shutil.rmtree(temp, ignore_errors=True)


def _stop(head: subprocess.Popen[str]) -> None:
    """Ctrl-C, which `--block` answers by stopping what it started; measured to hang at times
    after a job, so then the whole process group is killed."""
    head.send_signal(signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        head.wait(timeout=STOP_TIMEOUT_S)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(head.pid, signal.SIGKILL)
    head.wait()

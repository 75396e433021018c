"""Runs the real server (`python -m server`) as a subprocess on loopback ephemeral ports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 60.0


@dataclass
class RunningServer:
    proc: subprocess.Popen[str]
    port: int
    metrics_port: int
    artifacts: Path
    data_dir: Path
    lines: list[str] = field(default_factory=list)
    _channel: grpc.Channel | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def channel(self) -> grpc.Channel:
        if self._channel is None:
            self._channel = grpc.insecure_channel(self.target)
        return self._channel

    def logs(self) -> str:
        return "\n".join(self.lines)

    def log_records(self) -> list[dict]:
        records = []
        for line in list(self.lines):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait for the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self.close_channel()
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.close_channel()

    def close_channel(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None


def launch(
    artifacts: Path,
    data_dir: Path,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    port: int = 0,
) -> RunningServer:
    cmd = [
        sys.executable, "-m", "server",
        "--host", "127.0.0.1", "--port", str(port), "--metrics-port", "0",
        "--artifacts", str(artifacts), "--data-dir", str(data_dir),
        "--log-format", "json", "--reload-interval-seconds", "0", "--grace-seconds", "5",
        *extra_args,
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    lines: list[str] = []
    ready = threading.Event()
    ports: dict[str, int] = {}

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if not ready.is_set() and '"grpc_port"' in line:
                record = json.loads(line)
                ports.update(grpc=record["grpc_port"], metrics=record["metrics_port"])
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ready.wait(0.1):
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("server did not start:\n" + "\n".join(lines))
    if "grpc" not in ports:
        proc.wait(timeout=10)
        raise RuntimeError(f"server exited with {proc.returncode}:\n" + "\n".join(lines))
    return RunningServer(proc, ports["grpc"], ports["metrics"], artifacts, data_dir, lines)

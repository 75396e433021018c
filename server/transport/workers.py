"""Multi-process serving: a supervisor runs N worker processes that share one port.

Each worker is a fresh `python -m server --worker-id K` process (re-executed, not forked, so no
gRPC object ever crosses a fork and restarting a worker is as safe as starting one). Workers
bind with SO_REUSEPORT, which the kernel balances per *connection*: a client with one channel
talks to one worker, so load generators (ghz, h2load) need several connections.

The supervisor checks the port is free with a plain bind first, so a leftover server is an
error instead of a silent partner; holds a SO_REUSEPORT reservation so port 0 works; serves one
/metrics for all workers (prometheus_client multiprocess mode over a shared directory);
restarts a worker that dies; and on SIGTERM/SIGINT forwards the signal and waits for every
worker to drain.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from server.config import ServerConfig
from server.transport.drain import EXIT_ABANDONED, EXIT_DRAINED, HARD_STOP_AFTER_GRACE_S

log = logging.getLogger("server.supervisor")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
READY_TIMEOUT_S = 120.0
RESTART_BACKOFF_S = 1.0
KILL_MARGIN_S = 1.0  # past a worker's own hard stop, before the supervisor kills it


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def reserve_port(host: str, port: int) -> socket.socket:
    """Fail if anyone holds the port; then hold it with SO_REUSEPORT (workers join it)."""
    probe = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        probe.bind((host, port))
        port = probe.getsockname()[1]
    finally:
        probe.close()
    held = socket.socket(_family(host), socket.SOCK_STREAM)
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    held.bind((host, port))
    return held


def worker_argv(argv: Sequence[str], worker_id: int, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "server",
        *argv,
        "--workers",
        "1",
        "--worker-id",
        str(worker_id),
        "--port",
        str(port),
        "--metrics-port",
        "-1",
    ]  # fmt: skip  -- later flags win in argparse


def ready_file(metrics_dir: Path, worker_id: int) -> Path:
    return metrics_dir / f"ready-{worker_id}"


def supervise(config: ServerConfig, argv: Sequence[str]) -> int:
    from prometheus_client import CollectorRegistry, multiprocess

    from server.metrics import MetricsEndpoint

    try:
        reservation = reserve_port(config.bind_host, config.port)
    except OSError as err:
        log.error("start-up failed", extra={"reason": f"port {config.port}: {err}"})
        return 2
    port = reservation.getsockname()[1]
    metrics_dir = Path(tempfile.mkdtemp(prefix="crm-metrics-"))
    env = {**os.environ, MULTIPROC_ENV: str(metrics_dir)}
    workers: dict[int, subprocess.Popen[bytes]] = {}

    def spawn(worker_id: int) -> None:
        ready_file(metrics_dir, worker_id).unlink(missing_ok=True)
        workers[worker_id] = subprocess.Popen(worker_argv(argv, worker_id, port), env=env)

    for worker_id in range(1, config.workers + 1):
        spawn(worker_id)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not all(ready_file(metrics_dir, w).exists() for w in workers):
        dead = [w for w, p in workers.items() if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            log.error("workers failed to start", extra={"workers": dead or "timeout"})
            _stop_all(workers, config.grace_seconds)
            shutil.rmtree(metrics_dir, ignore_errors=True)
            return 2
        time.sleep(0.05)
    metrics_port = -1
    endpoint = None
    if config.metrics_port >= 0:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(metrics_dir))
        try:  # the workers started on the same certificate files, so this rarely fails
            endpoint = MetricsEndpoint.for_config(registry, config)
        except (OSError, ValueError) as err:  # port taken, TlsError
            log.error("start-up failed", extra={"reason": f"/metrics: {err}"})
            _stop_all(workers, config.grace_seconds)
            shutil.rmtree(metrics_dir, ignore_errors=True)
            return 2
        metrics_port = endpoint.port
    log.info(
        "listening",
        extra={
            "host": config.bind_host, "tls": config.tls_mode, "grpc_port": port,
            "metrics_port": metrics_port, "metrics_host": config.metrics_bind_host,
            "metrics_tls": config.metrics_tls, "workers": {w: p.pid for w, p in workers.items()},
        },
    )  # fmt: skip
    signals = {signal.SIGTERM, signal.SIGINT}
    while True:
        received = signal.sigtimedwait(signals, 0.5)
        if received is not None:
            log.info(
                "shutting down workers", extra={"signal": signal.Signals(received.si_signo).name}
            )
            break
        for worker_id, proc in list(workers.items()):
            if proc.poll() is not None:
                log.error(
                    "worker died; restarting",
                    extra={"worker": worker_id, "pid": proc.pid, "exit_code": proc.returncode},
                )
                multiprocess.mark_process_dead(proc.pid, str(metrics_dir))
                time.sleep(RESTART_BACKOFF_S)
                spawn(worker_id)
    code = _stop_all(workers, config.grace_seconds)
    if endpoint is not None:
        endpoint.close()
    reservation.close()
    shutil.rmtree(metrics_dir, ignore_errors=True)
    log.info("stopped")
    return code


def _stop_all(workers: dict[int, subprocess.Popen[bytes]], grace: float) -> int:
    """SIGTERM every worker (each drains on its own, `server.transport.drain`) and wait for them within
    the cap a worker keeps itself: grace + CLOSE_TIMEOUT_S, or its SIGALRM a little later.
    A worker still alive after that is killed. 0 when every worker drained, else EXIT_ABANDONED."""
    for proc in workers.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + math.ceil(grace) + HARD_STOP_AFTER_GRACE_S + KILL_MARGIN_S
    code = EXIT_DRAINED
    for worker_id, proc in workers.items():
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            log.error("worker did not stop; killed", extra={"worker": worker_id, "pid": proc.pid})
        if proc.returncode != EXIT_DRAINED:
            code = EXIT_ABANDONED
    return code

"""Echo reference servers: the most requests/s Python gRPC serves when a call does no work.

Two flavours with the same channel options -- grpc.aio (one event loop per process) and grpc's
threaded server (a ThreadPoolExecutor per process) -- each run as 1 or N pre-forked processes
sharing one port through SO_REUSEPORT (grpc's examples/python/multiprocessing pattern: the
parent reserves the port and forks BEFORE any grpc object exists; each worker then builds its
own server). The kernel balances SO_REUSEPORT per *connection*, so load needs several.

The parent serves no gRPC: it serves `grpc_server_handled_total` (per worker, method and code,
counted in shared memory) on an HTTP /metrics endpoint, the same metric the real server exports,
so the load harness checks success the same way for both.

Methods (identity (de)serializers, so no proto is needed): /bench.Echo/Echo returns the request
bytes; /bench.Echo/Fail always fails with INTERNAL, to prove the harness notices failed calls
that still travel as HTTP 200. With `--model DIR` (a churn model version: model.onnx and
manifest.json), the threaded flavour also serves /bench.Echo/Score: the least a model-serving
handler does -- parse a PredictChurnRequest of one customer by features, one onnxruntime call,
reply with the probability -- so a run can tell the cost of calling the model apart from the
cost of everything else the CRM server does per call.

    python -m benchmarks.echo_servers --flavour aio --procs 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import operator
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.sharedctypes import RawArray
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from benchmarks.h2load_grpc import stop_process
from server.transport.affinity import pin_to_one_core

SERVICE = "bench.Echo"
ECHO_PATH = f"/{SERVICE}/Echo"
FAIL_PATH = f"/{SERVICE}/Fail"
SCORE_PATH = f"/{SERVICE}/Score"
METHODS = ("Echo", "Fail", "Score")
CODES = ("OK", "INTERNAL")
FLAVOURS = ("aio", "threaded")
READY_TIMEOUT_S = 30.0
REPO_ROOT = Path(__file__).resolve().parent.parent


def server_options() -> list[tuple[str, Any]]:
    """Channel options shared by both flavours, so they differ only in the server model."""
    return [("grpc.so_reuseport", 1)]


class HandledCounters:
    """`grpc_server_handled_total` per worker, method and code, in memory shared across forks.

    Allocated before the fork. Each worker writes only its own slots, under a lock of its own
    (`+=` on shared memory is not atomic between a worker's threads); the parent reads them all.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._values = RawArray("q", workers * len(METHODS) * len(CODES))
        self._lock = threading.Lock()

    def _index(self, worker: int, method: str, code: str) -> int:
        return (worker * len(METHODS) + METHODS.index(method)) * len(CODES) + CODES.index(code)

    def add(self, worker: int, method: str, code: str) -> None:
        index = self._index(worker, method, code)
        with self._lock:
            self._values[index] += 1

    def prometheus_text(self) -> str:
        lines = [
            "# HELP grpc_server_handled_total Completed RPCs, per echo worker process.",
            "# TYPE grpc_server_handled_total counter",
        ]
        for worker in range(self.workers):
            for method in METHODS:
                for code in CODES:
                    labels = (
                        f'grpc_type="unary",grpc_service="{SERVICE}",grpc_method="{method}",'
                        f'grpc_code="{code}",worker="{worker}"'
                    )
                    value = self._values[self._index(worker, method, code)]
                    lines.append(f"grpc_server_handled_total{{{labels}}} {value}")
        return "\n".join(lines) + "\n"


class MinimalScorer:
    """PredictChurn reduced to parse, one onnxruntime call (the server's session options) and
    reply; no validation, metrics, batching or rules. Built in the worker, after the fork."""

    def __init__(self, model_dir: Path) -> None:
        import onnxruntime as ort

        from crm.v1 import churn_pb2, common_pb2
        from server.models.runtime import session_options

        manifest = json.loads((model_dir / "manifest.json").read_text())
        self._session = ort.InferenceSession(
            str(model_dir / "model.onnx"), session_options(1), providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name
        self._features = operator.itemgetter(*manifest["features"])
        self._parse = churn_pb2.PredictChurnRequest.FromString
        self._reply = churn_pb2.PredictChurnResponse
        self._prediction = churn_pb2.ChurnPrediction
        self._model = common_pb2.ModelRef(name=manifest["name"], version=int(manifest["version"]))

    def __call__(self, body: bytes) -> bytes:
        values = self._parse(body).customers[0].features.values
        x = np.array([self._features(values)], dtype=np.float32)
        (probability,) = self._session.run(["probability"], {self._input: x})[0].reshape(-1)
        return self._reply(
            model=self._model, predictions=[self._prediction(probability=float(probability))]
        ).SerializeToString()


def _sync_handler(
    counters: HandledCounters, worker: int, scorer: MinimalScorer | None = None
) -> grpc.GenericRpcHandler:
    def echo(request: bytes, context: grpc.ServicerContext) -> bytes:
        counters.add(worker, "Echo", "OK")
        return request

    def fail(request: bytes, context: grpc.ServicerContext) -> bytes:
        counters.add(worker, "Fail", "INTERNAL")
        context.abort(grpc.StatusCode.INTERNAL, "this method always fails")
        raise AssertionError("unreachable: abort raises")

    methods = {
        "Echo": grpc.unary_unary_rpc_method_handler(echo),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
    }
    if scorer is not None:

        def score(request: bytes, context: grpc.ServicerContext) -> bytes:
            reply = scorer(request)
            counters.add(worker, "Score", "OK")
            return reply

        methods["Score"] = grpc.unary_unary_rpc_method_handler(score)
    return grpc.method_handlers_generic_handler(SERVICE, methods)


def _async_handler(counters: HandledCounters, worker: int) -> grpc.GenericRpcHandler:
    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        counters.add(worker, "Echo", "OK")
        return request

    async def fail(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        counters.add(worker, "Fail", "INTERNAL")
        await context.abort(grpc.StatusCode.INTERNAL, "this method always fails")
        raise AssertionError("unreachable: abort raises")

    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Echo": grpc.unary_unary_rpc_method_handler(echo),
            "Fail": grpc.unary_unary_rpc_method_handler(fail),
        },
    )


def _serve_threaded(
    address: str,
    threads: int,
    *,
    counters: HandledCounters,
    worker: int,
    ready: Any,
    model_dir: Path | None,
) -> None:
    scorer = MinimalScorer(model_dir) if model_dir is not None else None
    server = grpc.server(ThreadPoolExecutor(max_workers=threads), options=server_options())
    server.add_generic_rpc_handlers((_sync_handler(counters, worker, scorer),))
    if server.add_insecure_port(address) == 0:
        raise RuntimeError(f"worker {worker} could not bind {address}")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    ready.release()
    stop.wait()
    server.stop(grace=1.0).wait()


async def _serve_aio(address: str, counters: HandledCounters, worker: int, ready: Any) -> None:
    server = grpc.aio.server(options=server_options())
    server.add_generic_rpc_handlers((_async_handler(counters, worker),))
    if server.add_insecure_port(address) == 0:
        raise RuntimeError(f"worker {worker} could not bind {address}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    ready.release()
    await stop.wait()
    await server.stop(grace=1.0)


def _worker_main(
    flavour: str,
    address: str,
    *,
    threads: int,
    counters: HandledCounters,
    worker: int,
    ready: Any,
    pin_cpus: bool,
    model_dir: Path | None,
) -> None:
    if pin_cpus:  # as the CRM server pins itself by default: worker K on core K-1
        pin_to_one_core(worker)
    if flavour == "aio":
        asyncio.run(_serve_aio(address, counters, worker, ready))
    else:
        _serve_threaded(
            address, threads, counters=counters, worker=worker, ready=ready, model_dir=model_dir
        )


def _reserve_port(host: str, port: int) -> socket.socket:
    """Bind (never listen) with SO_REUSEPORT so the port stays ours while workers bind it."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _metrics_server(host: str, port: int, counters: HandledCounters) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            body = counters.prometheus_text().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return ThreadingHTTPServer((host, port), Handler)


def serve(
    flavour: str,
    procs: int,
    *,
    threads: int,
    host: str,
    port: int,
    metrics_port: int,
    pin_cpus: bool = True,
    model_dir: Path | None = None,
) -> int:
    """Fork the workers, serve /metrics, print one JSON 'ready' line; run until SIGTERM/SIGINT."""
    if flavour not in FLAVOURS:
        raise ValueError(f"flavour must be one of {FLAVOURS}, not {flavour!r}")
    if model_dir is not None and flavour != "threaded":
        raise ValueError("--model is served by the threaded flavour only")
    reserved = _reserve_port(host, port)
    port = reserved.getsockname()[1]
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    context = multiprocessing.get_context("fork")
    counters = HandledCounters(procs)
    ready = context.Semaphore(0)
    workers = [
        context.Process(
            target=_worker_main,
            args=(flavour, address),
            kwargs={
                "threads": threads,
                "counters": counters,
                "worker": i,
                "ready": ready,
                "pin_cpus": pin_cpus,
                "model_dir": model_dir,
            },
            name=f"echo-{flavour}-{i}",
            daemon=True,
        )
        for i in range(procs)
    ]
    for worker in workers:  # every fork happens before the first grpc object exists
        worker.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        if not _wait_ready(workers, ready, stop):
            return 1
        metrics = _metrics_server(host, metrics_port, counters)
        threading.Thread(target=metrics.serve_forever, daemon=True).start()
        info = {
            "event": "ready",
            "flavour": flavour,
            "procs": procs,
            "threads": threads if flavour == "threaded" else None,
            "pin_cpus": pin_cpus,
            "target": address,
            "metrics_url": f"http://{address.rsplit(':', 1)[0]}:{metrics.server_address[1]}/metrics",
            "worker_pids": [w.pid for w in workers],
            "echo_path": ECHO_PATH,
            "fail_path": FAIL_PATH,
            "score_path": SCORE_PATH if model_dir is not None else None,
        }
        print(json.dumps(info), flush=True)
        while not stop.wait(0.5):
            dead = [w for w in workers if not w.is_alive()]
            if dead:
                print(f"echo worker {dead[0].name} exited ({dead[0].exitcode})", file=sys.stderr)
                return 1
        return 0
    finally:
        _stop_workers(workers)
        reserved.close()


def _wait_ready(workers: list[Any], ready: Any, stop: threading.Event) -> bool:
    deadline = READY_TIMEOUT_S
    started = 0
    while started < len(workers) and deadline > 0 and not stop.is_set():
        if ready.acquire(timeout=0.2):
            started += 1
            continue
        deadline -= 0.2
        dead = [w for w in workers if not w.is_alive()]
        if dead:
            print(
                f"echo worker {dead[0].name} failed to start ({dead[0].exitcode})", file=sys.stderr
            )
            return False
    if started < len(workers):
        print(f"only {started}/{len(workers)} echo workers became ready", file=sys.stderr)
    return started == len(workers)


def _stop_workers(workers: list[Any]) -> None:
    for worker in workers:
        if worker.is_alive() and worker.pid is not None:
            os.kill(worker.pid, signal.SIGTERM)
    for worker in workers:
        worker.join(timeout=5)
        if worker.is_alive():
            worker.kill()
            worker.join()


@dataclass(frozen=True)
class EchoServer:
    """A running echo server launched by `launch`: where to send load and where to check it."""

    flavour: str
    procs: int
    threads: int | None
    target: str
    metrics_url: str
    worker_pids: list[int]
    score_path: str | None = None


@contextlib.contextmanager
def launch(
    flavour: str,
    procs: int,
    threads: int = 8,
    host: str = "127.0.0.1",
    pin_cpus: bool = True,
    *,
    model_dir: Path | None = None,
) -> Iterator[EchoServer]:
    """Run an echo server in a fresh interpreter (fork+exec: safe after this process used grpc)."""
    command = [sys.executable, "-m", "benchmarks.echo_servers", "--flavour", flavour]
    command += ["--procs", str(procs), "--threads", str(threads), "--host", host]
    command += [] if pin_cpus else ["--no-pin-cpus"]
    command += [] if model_dir is None else ["--model", str(model_dir)]
    proc = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(
                f"echo server {flavour} x{procs} exited ({proc.wait()}) before ready"
            )
        info = json.loads(line)
        yield EchoServer(
            flavour=flavour,
            procs=procs,
            threads=info["threads"],
            target=info["target"],
            metrics_url=info["metrics_url"],
            worker_pids=info["worker_pids"],
            score_path=info["score_path"],
        )
        if proc.poll() is not None:
            raise RuntimeError(
                f"echo server {flavour} x{procs} died during the run ({proc.returncode})"
            )
    finally:
        stop_process(proc, grace_s=15)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flavour", choices=FLAVOURS, default="aio")
    parser.add_argument("--procs", type=int, default=1, help="pre-forked processes on one port")
    parser.add_argument("--threads", type=int, default=8, help="handler threads (threaded only)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="gRPC port; 0 picks a free one")
    parser.add_argument("--metrics-port", type=int, default=0, help="/metrics port; 0: free one")
    parser.add_argument(
        "--no-pin-cpus",
        dest="pin_cpus",
        action="store_false",
        help="let the kernel move workers between cores (default: worker K on core K-1)",
    )
    parser.add_argument(
        "--model", type=Path, help="churn model version dir: also serve /bench.Echo/Score"
    )
    args = parser.parse_args(argv)
    if args.procs < 1 or args.threads < 1:
        parser.error("--procs and --threads must be >= 1")
    if args.model is not None and args.flavour != "threaded":
        parser.error("--model is served by the threaded flavour only")
    return serve(
        args.flavour,
        args.procs,
        threads=args.threads,
        host=args.host,
        port=args.port,
        metrics_port=args.metrics_port,
        pin_cpus=args.pin_cpus,
        model_dir=args.model,
    )


if __name__ == "__main__":
    sys.exit(main())

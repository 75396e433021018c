"""Server CPU per call spent around a trivial unary handler: what the interceptor costs.

The server runs in a child process with the server's own interceptor stack
(`server.transport.interceptor.serving_interceptor`) and one method that echoes a small protobuf
message; the parent makes sequential calls over loopback and reads the child's CPU time
(user + system, from /proc) before and after. The handler does nothing, so a change in the
figure is a change in gRPC's or the interceptor's per-call cost.

    python -m benchmarks.interceptor_cpu                  # 5 rounds of 5,000 calls
    python -m benchmarks.interceptor_cpu --calls 2000 --rounds 3
    PYTHONPATH=/some/other/checkout python -m benchmarks.interceptor_cpu   # compare code
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import grpc
from google.protobuf.wrappers_pb2 import StringValue

SERVICE = "bench.Echo"
METHOD = f"/{SERVICE}/Echo"


def _serve() -> None:
    """Child: serve Echo behind the server's interceptor stack until stdin closes."""
    from server.metrics import ServerMetrics
    from server.transport.interceptor import serving_interceptor
    from server.transport.stream_slots import StreamSlots

    metrics = ServerMetrics()
    interceptor = serving_interceptor(metrics, StreamSlots(4, 8, metrics.open_streams))
    server = grpc.server(ThreadPoolExecutor(8), interceptors=[interceptor])
    handler = grpc.unary_unary_rpc_method_handler(
        lambda request, context: request,
        request_deserializer=StringValue.FromString,
        response_serializer=StringValue.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {"Echo": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    sys.stdin.read()
    server.stop(None)


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _round(calls: int) -> float:
    """Server CPU microseconds per call over `calls` sequential calls."""
    child = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.interceptor_cpu", "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdin is not None
    try:
        port = int(child.stdout.readline())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            echo = channel.unary_unary(
                METHOD,
                request_serializer=StringValue.SerializeToString,
                response_deserializer=StringValue.FromString,
            )
            request = StringValue(value="C000123")
            for _ in range(500):  # warm up: connection, caches, first-call paths
                echo(request)
            before = _cpu_seconds(child.pid)
            for _ in range(calls):
                echo(request)
            after = _cpu_seconds(child.pid)
        return (after - before) / calls * 1e6
    finally:
        child.stdin.close()
        child.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve()
        return
    figures = []
    for _ in range(args.rounds):
        figures.append(_round(args.calls))
        print(f"{figures[-1]:.1f} us/call", flush=True)
    print(f"median {statistics.median(figures):.1f} us server CPU per call")


if __name__ == "__main__":
    main()

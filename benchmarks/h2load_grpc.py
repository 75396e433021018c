"""Load-test one unary gRPC method with h2load, and prove the calls actually succeeded.

h2load speaks HTTP/2, not gRPC: it counts HTTP 200 as success, and a failed gRPC call is a 200
too (grpc-status travels in the trailers). So every run is also checked at the gRPC level:
  * probes: the same request bytes sent with a real grpc client before and after the run must
    come back OK (and equal to an expected response, when one is given);
  * server metrics, when a Prometheus URL is given: during the run `grpc_server_handled_total`
    for the method must gain no non-OK code and at least as many OK as h2load saw 200s.
A run that fails any check carries `failures` and is never reported as a throughput figure.

Library: `run_h2load(target, method_path, request_bytes, clients, streams, duration_s)`.
CLI:     python -m benchmarks.h2load_grpc --target 127.0.0.1:50051 --method /pkg.Svc/Method \
             --message crm.v1.GetModelMetadataRequest --request-text 'name: "churn"' -D 10
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import grpc

PROBE_CHANNELS = 4  # separate connections, so SO_REUSEPORT spreads probes over worker processes
PROBE_TIMEOUT_S = 5.0
GRPC_HEADERS = ("te: trailers", "content-type: application/grpc")


class H2loadUnavailable(RuntimeError):
    """h2load is not installed and could not be installed here."""


@dataclass(frozen=True)
class Security:
    """TLS and a bearer token for a run against a server started with --tls-cert.

    h2load gets an https URI and the authorization header, but it neither verifies the server
    certificate (it has no CA option) nor presents a client certificate: a server with
    --tls-client-ca (mTLS) can be loaded only by ghz. The probes and the /metrics scrape do
    verify against `ca` (the system roots when None) and present `cert`/`key` when given."""

    tls: bool = False
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    token: str | None = None
    server_name: str | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    def metadata(self) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.token}")] if self.token else []

    def channel(self, target: str, options: list[tuple[str, Any]]) -> grpc.Channel:
        if not self.tls:
            return grpc.insecure_channel(target, options=options)
        if self.server_name:
            options = [*options, ("grpc.ssl_target_name_override", self.server_name)]
        credentials = grpc.ssl_channel_credentials(
            self.ca.read_bytes() if self.ca else None,
            self.key.read_bytes() if self.key else None,
            self.cert.read_bytes() if self.cert else None,
        )
        return grpc.secure_channel(target, credentials, options=options)

    def url_context(self) -> ssl.SSLContext | None:
        """For an https /metrics URL: trust `ca` too."""
        return ssl.create_default_context(cafile=str(self.ca)) if self.ca else None


PLAINTEXT = Security()


def grpc_frame(message: bytes) -> bytes:
    """One gRPC length-prefixed message: flag byte 0 (uncompressed), 4-byte big-endian length."""
    return struct.pack(">BI", 0, len(message)) + message


def ensure_h2load() -> str:
    """Path to h2load; installs Debian's nghttp2-client when missing and we may (root + apt)."""
    found = shutil.which("h2load")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "nghttp2-client"],
        ):
            subprocess.run(command, env=env, check=False, capture_output=True)
        found = shutil.which("h2load")
        if found:
            return found
    raise H2loadUnavailable(
        "h2load not found: install the Debian package nghttp2-client "
        "(sudo apt-get install nghttp2-client), or run `make system-deps` as root"
    )


@dataclass(frozen=True)
class H2loadStats:
    """What h2load's own summary says (HTTP level only: it cannot see grpc-status)."""

    elapsed_s: float
    req_per_s: float
    total: int
    started: int
    done: int
    succeeded: int
    failed: int
    errored: int
    timeout: int
    status_2xx: int
    status_other: int
    latency_ms: dict[str, float]  # min, max, mean, sd of "time for request"


_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(f"unparseable h2load duration {text!r}")
    return float(match.group(1)) * _UNIT_MS[match.group(2)]


def parse_h2load_output(text: str) -> H2loadStats:
    """Parse h2load's summary; raises ValueError when it has none (h2load failed to start)."""
    finished = re.search(r"finished in ([\d.]+(?:us|ms|s)), ([\d.]+) req/s", text)
    requests = re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
        r"(\d+) errored, (\d+) timeout",
        text,
    )
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    if not (finished and requests and codes):
        tail = "\n".join(text.strip().splitlines()[-5:])
        raise ValueError(f"h2load printed no summary; its output ended with:\n{tail}")
    latency: dict[str, float] = {}
    row = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", text)
    if row:
        latency = {
            k: _duration_ms(v)
            for k, v in zip(("min", "max", "mean", "sd"), row.groups(), strict=True)
        }
    total, started, done, succeeded, failed, errored, timeout = map(int, requests.groups())
    c2, c3, c4, c5 = map(int, codes.groups())
    return H2loadStats(
        elapsed_s=_duration_ms(finished.group(1)) / 1e3,
        req_per_s=float(finished.group(2)),
        total=total,
        started=started,
        done=done,
        succeeded=succeeded,
        failed=failed,
        errored=errored,
        timeout=timeout,
        status_2xx=c2,
        status_other=c3 + c4 + c5,
        latency_ms=latency,
    )


def log_percentiles(log_path: Path) -> tuple[dict[str, float], int]:
    """p50/p90/p99 (ms) of completed requests in an h2load --log-file, and its failed-row count.

    Columns: start time (us since epoch), HTTP status (-1 for a failed stream), duration (us).
    """
    durations: list[int] = []
    failed = 0
    for line in log_path.read_text().splitlines():
        columns = line.split("\t")
        if len(columns) < 3:
            continue
        if columns[1] != "200":
            failed += 1
            continue
        durations.append(int(columns[2]))
    if len(durations) < 2:
        return {}, failed
    cuts = statistics.quantiles(durations, n=100, method="inclusive")
    return {"p50": cuts[49] / 1e3, "p90": cuts[89] / 1e3, "p99": cuts[98] / 1e3}, failed


def probe(
    target: str,
    method_path: str,
    request: bytes,
    count: int,
    expected_response: bytes | None = None,
    *,
    security: Security = PLAINTEXT,
) -> tuple[int, list[str]]:
    """Send `count` real unary calls (raw bytes both ways): (calls OK, each distinct failure)."""
    problems: Counter[str] = Counter()
    options: list[tuple[str, Any]] = [("grpc.use_local_subchannel_pool", 1)]
    channels = [security.channel(target, options) for _ in range(PROBE_CHANNELS)]
    metadata = security.metadata()
    try:
        for i in range(count):
            call = channels[i % len(channels)].unary_unary(method_path)
            try:
                response = call(request, timeout=PROBE_TIMEOUT_S, metadata=metadata)
            except grpc.RpcError as err:
                problems[f"{err.code().name}: {err.details()}"] += 1
                continue
            if expected_response is not None and response != expected_response:
                problems[f"OK but unexpected response ({len(response)} bytes)"] += 1
    finally:
        for channel in channels:
            channel.close()
    failures = [f"{n}/{count} probe calls: {what}" for what, n in problems.items()]
    return count - sum(problems.values()), failures


def scrape_handled(
    metrics_url: str, method_path: str, security: Security = PLAINTEXT
) -> dict[str, float]:
    """`grpc_server_handled_total` for one method, summed per grpc_code over other labels."""
    from prometheus_client.parser import text_string_to_metric_families

    service, _, method = method_path.strip("/").rpartition("/")
    context = security.url_context()
    with urllib.request.urlopen(metrics_url, timeout=10, context=context) as response:
        text = response.read().decode()
    by_code: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "grpc_server_handled_total"
                and labels.get("grpc_service") == service
                and labels.get("grpc_method") == method
            ):
                code = labels.get("grpc_code", "")
                by_code[code] = by_code.get(code, 0.0) + sample.value
    return by_code


def _scrape(
    metrics_url: str, method_path: str, result: Result, security: Security = PLAINTEXT
) -> dict[str, float] | None:
    """scrape_handled, or None with a failure recorded: an unreadable metrics URL fails the run."""
    try:
        return scrape_handled(metrics_url, method_path, security)
    except (OSError, ValueError) as err:
        result.failures.append(f"cannot read {metrics_url}: {err}")
        return None


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process (all its threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop_process(proc: subprocess.Popen[Any], grace_s: float) -> None:
    """SIGTERM a server the harness started, then SIGKILL it if it is still up after `grace_s`."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def machine_cpu_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks over all cores since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


@dataclass
class Result:
    """One measured run; `failures` non-empty means its figures must not be reported."""

    target: str
    method_path: str
    clients: int
    streams: int
    duration_s: float | None
    requests: int | None
    req_per_s: float = 0.0
    elapsed_s: float = 0.0
    completed: int = 0
    latency_ms: dict[str, float] = field(default_factory=dict)  # min max mean sd p50 p90 p99
    loadgen_cpu_cores: float | None = None  # h2load's CPU seconds per wall second
    server_cpu_cores: dict[int, float] = field(default_factory=dict)  # per server pid
    machine_busy: float | None = None  # share of all cores busy during the run, 0..1
    other_cpu_cores: float | None = None  # busy cores neither h2load nor server_pids used
    server_handled: dict[str, float] | None = None  # grpc_code -> count during the run
    probes_ok: int = 0
    probes_sent: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def in_flight(self) -> int:
        return self.clients * self.streams

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def server_cpu_us_per_call(self) -> float:
        """Server CPU (all its processes) per completed call, in microseconds."""
        return sum(self.server_cpu_cores.values()) / max(self.req_per_s, 1.0) * 1e6

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "in_flight": self.in_flight, "ok": self.ok}

    def summary(self) -> str:
        head = f"{self.method_path} c={self.clients} m={self.streams} ({self.in_flight} in flight)"
        if not self.ok:
            return f"{head}: LOAD FAILED\n" + "\n".join(f"  - {f}" for f in self.failures)
        lat = self.latency_ms
        parts = [
            f"{head}: {self.req_per_s:,.0f} req/s",
            f"p50 {lat.get('p50', float('nan')):.2f} ms",
            f"p99 {lat.get('p99', float('nan')):.2f} ms",
            f"mean {lat.get('mean', float('nan')):.2f} ms",
        ]
        if self.loadgen_cpu_cores is not None:
            parts.append(f"h2load {self.loadgen_cpu_cores:.2f} cores")
        if self.server_cpu_cores:
            parts.append(f"server {sum(self.server_cpu_cores.values()):.2f} cores")
        if self.machine_busy is not None:
            parts.append(f"machine {self.machine_busy:.0%} busy")
        if self.other_cpu_cores is not None:
            parts.append(f"others {self.other_cpu_cores:.2f} cores")
        checks = f"{self.completed:,} calls, probes {self.probes_ok}/{self.probes_sent} OK"
        if self.server_handled is not None:
            checks += f", server OK +{self.server_handled.get('OK', 0):,.0f}"
        return "  ".join(parts) + f"  [{checks}]"


def _h2load_args(
    h2load: str,
    uri: str,
    body_path: Path,
    *,
    clients: int,
    streams: int,
    threads: int,
    duration_s: float | None,
    requests: int | None,
    log_path: Path | None = None,
    headers: Sequence[str] = (),
) -> list[str]:
    args = [h2load, "-c", str(clients), "-m", str(streams), "-t", str(threads)]
    for header in (*GRPC_HEADERS, *headers):
        args += ["-H", header]
    args += ["-d", str(body_path)]
    if duration_s is not None:
        args += ["-D", f"{round(duration_s * 1000)}ms"]
    else:
        args += ["-n", str(requests)]
    if log_path is not None:
        args += ["--log-file", str(log_path)]
    return [*args, uri]


def _run_measured(args: list[str], timeout_s: float) -> tuple[int, str, float, float]:
    """Run h2load; (exit code, output, its own CPU seconds from wait4's rusage, wall seconds)."""
    with tempfile.TemporaryFile("w+") as out:
        started = time.monotonic()
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, text=True)
        watchdog = threading.Timer(timeout_s, proc.kill)
        watchdog.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            watchdog.cancel()
        wall_s = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        return proc.returncode, out.read(), usage.ru_utime + usage.ru_stime, wall_s


def _h2load_failures(stage: str, code: int, output: str) -> tuple[H2loadStats | None, list[str]]:
    try:
        stats = parse_h2load_output(output)
    except ValueError as err:
        return None, [f"{stage}: h2load exited {code} without a summary: {err}"]
    problems = []
    if code != 0:
        problems.append(f"{stage}: h2load exited {code}")
    if stats.done == 0:
        problems.append(f"{stage}: no request completed")
    if stats.failed or stats.errored or stats.timeout or stats.status_other:
        problems.append(
            f"{stage}: {stats.failed} failed, {stats.errored} errored, {stats.timeout} timed out, "
            f"{stats.status_other} non-2xx HTTP responses"
        )
    return stats, problems


def _check_server_counts(handled: dict[str, float], h2load_ok: int, method_path: str) -> list[str]:
    problems = []
    not_ok = {code: n for code, n in handled.items() if code != "OK" and n > 0}
    if not_ok:
        problems.append(f"server counted failed calls during the run: {not_ok}")
    ok = handled.get("OK", 0.0)
    if ok < h2load_ok:
        problems.append(
            f"server counted {ok:.0f} OK calls of {method_path} but h2load saw {h2load_ok} HTTP "
            f"200s: at least {h2load_ok - ok:.0f} were failed gRPC calls"
        )
    return problems


def run_h2load(  # noqa: PLR0917 -- the positional shape the harness documents
    target: str,
    method_path: str,
    request_bytes: bytes,
    clients: int,
    streams: int,
    duration_s: float | None = 10.0,
    *,
    requests: int | None = None,
    warmup_s: float = 1.0,
    threads: int = 1,
    metrics_url: str | None = None,
    expected_response: bytes | None = None,
    probes: int = 20,
    server_pids: Sequence[int] = (),
    timeout_s: float | None = None,
    security: Security = PLAINTEXT,
) -> Result:
    """Load `method_path` at `target` with clients x streams calls in flight; check they succeeded.

    Runs for `duration_s`, or for `requests` calls when duration_s is None, after an unmeasured
    warm-up of `warmup_s`. The success checks: `probes` real gRPC calls before and after (must be
    OK, and equal `expected_response` when given), and -- when `metrics_url` is given -- the
    server's `grpc_server_handled_total` for the method over the measured run. `security`:
    TLS (https, no client certificate: see Security) and a bearer token on every call.
    """
    if duration_s is None and requests is None:
        raise ValueError("give duration_s or requests")
    if clients < 1 or streams < 1 or not 1 <= threads <= clients:
        raise ValueError("need clients >= 1, streams >= 1 and 1 <= threads <= clients")
    if probes < 1 and not metrics_url:
        raise ValueError("no gRPC-level check: give probes >= 1 or a metrics_url")
    if requests is not None and duration_s is None and requests < clients:
        raise ValueError("requests must be >= clients")
    if not re.fullmatch(r"/[\w.]+/\w+", method_path):
        raise ValueError(f"method_path must look like /package.Service/Method: {method_path!r}")
    if security.cert is not None:
        raise ValueError(
            "h2load cannot present a client certificate (mTLS): load this server with ghz"
        )
    h2load = ensure_h2load()
    result = Result(target, method_path, clients, streams, duration_s, requests)
    timeout_s = timeout_s or ((duration_s or 0) + warmup_s + 60 if duration_s else 600)
    with tempfile.TemporaryDirectory(prefix="h2load-grpc-") as tmp:
        body = Path(tmp, "body.bin")
        body.write_bytes(grpc_frame(request_bytes))
        log = Path(tmp, "requests.log")
        uri = f"{security.scheme}://{target}{method_path}"
        headers = [f"{k}: {v}" for k, v in security.metadata()]
        shape = {"clients": clients, "streams": streams, "threads": threads, "headers": headers}
        if warmup_s > 0:
            args = _h2load_args(h2load, uri, body, **shape, duration_s=warmup_s, requests=None)
            code, output, _, _ = _run_measured(args, warmup_s + 60)
            result.failures += _h2load_failures("warm-up", code, output)[1]
        result.probes_sent = probes * 2
        probes_ok, problems = probe(
            target, method_path, request_bytes, probes, expected_response, security=security
        )
        result.probes_ok += probes_ok
        result.failures += [f"before the run: {p}" for p in problems]
        handled_before = (
            _scrape(metrics_url, method_path, result, security) if metrics_url else None
        )
        cpu_before = {pid: process_cpu_s(pid) for pid in server_pids}
        busy_before, total_before = machine_cpu_ticks()

        args = _h2load_args(
            h2load, uri, body, **shape, duration_s=duration_s, requests=requests, log_path=log
        )
        code, output, loadgen_cpu_s, wall_s = _run_measured(args, timeout_s)

        busy_after, total_after = machine_cpu_ticks()
        for pid in server_pids:
            try:
                result.server_cpu_cores[pid] = (process_cpu_s(pid) - cpu_before[pid]) / wall_s
            except FileNotFoundError:
                result.failures.append(f"server process {pid} exited during the run")
        result.machine_busy = (busy_after - busy_before) / max(total_after - total_before, 1)
        result.loadgen_cpu_cores = loadgen_cpu_s / wall_s
        busy_cores = (busy_after - busy_before) / os.sysconf("SC_CLK_TCK") / wall_s
        if server_pids:
            server_cores = sum(result.server_cpu_cores.values())
            result.other_cpu_cores = max(busy_cores - result.loadgen_cpu_cores - server_cores, 0)
        stats, problems = _h2load_failures("run", code, output)
        result.failures += problems
        if stats is not None:
            result.req_per_s = stats.req_per_s
            result.elapsed_s = stats.elapsed_s
            result.completed = stats.done
            percentiles, failed_rows = log_percentiles(log) if log.exists() else ({}, 0)
            result.latency_ms = {**stats.latency_ms, **percentiles}
            if failed_rows and not problems:
                result.failures.append(f"run: {failed_rows} failed requests in h2load's log")
        handled_after = _scrape(metrics_url, method_path, result, security) if metrics_url else None
        if handled_before is not None and handled_after is not None:
            if not handled_after:
                result.failures.append(
                    f"{metrics_url} has no grpc_server_handled_total for {method_path}"
                )
            codes = set(handled_before) | set(handled_after)
            result.server_handled = {
                c: handled_after.get(c, 0.0) - handled_before.get(c, 0.0) for c in sorted(codes)
            }
            if stats is not None:
                result.failures += _check_server_counts(
                    result.server_handled, stats.succeeded, method_path
                )
        probes_ok, problems = probe(
            target, method_path, request_bytes, probes, expected_response, security=security
        )
        result.probes_ok += probes_ok
        result.failures += [f"after the run: {p}" for p in problems]
    return result


def message_bytes(type_name: str, text: str) -> bytes:
    """Serialize a crm.v1 message given in protobuf text format, e.g. 'customer_id: "C1"'."""
    import importlib
    import pkgutil

    from google.protobuf import descriptor_pool, message_factory, text_format

    import crm.v1

    for module in pkgutil.iter_modules(crm.v1.__path__):
        if module.name.endswith("_pb2"):
            importlib.import_module(f"crm.v1.{module.name}")
    descriptor = descriptor_pool.Default().FindMessageTypeByName(type_name)
    message = message_factory.GetMessageClass(descriptor)()
    text_format.Parse(text, message)
    return message.SerializeToString()


def _request_from_args(args: argparse.Namespace) -> bytes:
    if args.request_file:
        return Path(args.request_file).read_bytes()
    if args.message:
        return message_bytes(args.message, args.request_text or "")
    return bytes.fromhex(args.request_hex or "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Load-test one unary gRPC method with h2load and check grpc-status.",
    )
    parser.add_argument("--target", required=True, help="host:port of the gRPC server")
    parser.add_argument("--method", required=True, help="/package.Service/Method")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--request-file", help="file holding the serialized request message")
    source.add_argument("--request-hex", help="serialized request as hex (default: empty)")
    source.add_argument("--message", help="request type for --request-text, e.g. crm.v1.X")
    parser.add_argument("--request-text", help="request in protobuf text format (with --message)")
    parser.add_argument("-c", "--clients", type=int, default=8, help="HTTP/2 connections")
    parser.add_argument("-m", "--streams", type=int, default=4, help="calls in flight per client")
    parser.add_argument("-t", "--threads", type=int, default=1, help="h2load threads")
    parser.add_argument("-D", "--duration", type=float, default=10.0, help="seconds measured")
    parser.add_argument("-n", "--requests", type=int, help="run this many calls instead of -D")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument("--metrics-url", help="server's Prometheus /metrics, to count grpc codes")
    parser.add_argument("--expect-echo", action="store_true", help="probes must echo the request")
    parser.add_argument("--probes", type=int, default=20, help="real gRPC calls before and after")
    parser.add_argument("--server-pid", type=int, action="append", default=[], help="meter CPU")
    parser.add_argument("--json", help="also write the result as JSON here")
    args = parser.parse_args(argv)
    if args.request_text and not args.message:
        parser.error("--request-text needs --message")
    request = _request_from_args(args)
    try:
        result = run_h2load(
            args.target,
            args.method,
            request,
            args.clients,
            args.streams,
            None if args.requests else args.duration,
            requests=args.requests,
            warmup_s=args.warmup,
            threads=args.threads,
            metrics_url=args.metrics_url,
            expected_response=request if args.expect_echo else None,
            probes=args.probes,
            server_pids=args.server_pid,
        )
    except (H2loadUnavailable, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    print(result.summary(), file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())

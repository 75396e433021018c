"""Load a running server with one ghz config: ghz itself when it is on PATH, else h2load.

The configs in clients/ghz/ are ghz's JSON config format. Without ghz (it cannot be installed
on our machines), the same call and data go through benchmarks.h2load_grpc: the config's JSON
`data` is encoded into the request message with google.protobuf.json_format, and every run is
checked at the gRPC level (probes, and the server's /metrics when given). ghz's concurrency C
over K connections becomes h2load's K connections x ceil(C / K) streams.

TLS: a config with `"insecure": false` (ghz's default) connects with TLS, trusting `cacert` and
presenting `cert`/`key` (paths relative to the repo root); `--ca`, `--cert`, `--key` set them
from the command line. `--token` (or env CRM_TOKEN) becomes the `authorization: Bearer` metadata,
filling the config's `$CRM_TOKEN` placeholder. h2load verifies no certificate and cannot present
one: a server with --tls-client-ca is loaded by ghz only.

    python -m benchmarks.loadtest --config clients/ghz/churn.PredictChurn.by_id.json \
        --target 127.0.0.1:50051 --metrics-url http://127.0.0.1:9095/metrics
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pool, json_format, message_factory
from google.protobuf.message import Message

from benchmarks.h2load_grpc import PLAINTEXT, H2loadUnavailable, Security, run_h2load

REPO_ROOT = Path(__file__).resolve().parent.parent
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_SECONDS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
TOKEN_PLACEHOLDER = "$CRM_TOKEN"  # in a config's metadata: filled from --token / CRM_TOKEN


class ConfigError(ValueError):
    """The ghz config cannot be run as given."""


def parse_duration(text: str) -> float:
    """Seconds of a ghz (Go) duration such as "30s", "1m30s" or "500ms"."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise ConfigError(f"not a duration: {text!r} (e.g. 30s, 1m30s, 500ms)")
    return sum(float(n) * _SECONDS[u] for n, u in parts)


def method_path(call: str) -> str:
    """ "/package.Service/Method" from ghz's "package.Service.Method" or "package.Service/Method"."""
    call = call.lstrip(".")
    if call.count("/") == 1:
        service, method = call.split("/")
    elif "/" not in call and "." in call:
        service, method = call.rsplit(".", 1)
    else:
        raise ConfigError(f"call must be package.Service.Method: {call!r}")
    return f"/{service}/{method}"


def _load_descriptors() -> descriptor_pool.DescriptorPool:
    """The default pool with every crm.v1 message, the Open Inference Protocol's (inference)
    and grpc.health.v1 registered."""
    import crm.v1
    import inference

    for package in (crm.v1, inference):
        for module in pkgutil.iter_modules(package.__path__):
            if module.name.endswith("_pb2"):
                importlib.import_module(f"{package.__name__}.{module.name}")
    importlib.import_module("grpc_health.v1.health_pb2")
    return descriptor_pool.Default()


def request_message(call: str, data: dict[str, Any]) -> Message:
    """The call's request message with `data` parsed in (json_format: ghz's JSON mapping)."""
    service_name, method_name = method_path(call).strip("/").split("/")
    pool = _load_descriptors()
    try:
        method = pool.FindServiceByName(service_name).FindMethodByName(method_name)
    except KeyError:
        method = None
    if method is None:
        raise ConfigError(
            f"no RPC {service_name}/{method_name} in crm.v1, inference or grpc.health.v1"
        )
    if method.client_streaming or method.server_streaming:
        raise ConfigError(f"{service_name}/{method_name} is a streaming RPC: unary only")
    message = message_factory.GetMessageClass(method.input_type)()
    try:
        json_format.ParseDict(data, message)
    except json_format.ParseError as err:
        raise ConfigError(f"data does not parse as {method.input_type.full_name}: {err}") from None
    return message


@dataclass(frozen=True)
class GhzConfig:
    """The parts of a ghz config a run needs."""

    path: Path
    raw: dict[str, Any]
    call: str
    host: str
    concurrency: int
    connections: int
    duration_s: float | None
    total: int | None
    data: dict[str, Any]
    security: Security = PLAINTEXT


def _security(raw: dict[str, Any]) -> Security:
    """ghz's TLS keys: insecure (false by default: TLS), cacert, cert, key, cname; and the
    bearer token from metadata.authorization (None while it is the placeholder)."""

    def path(key: str) -> Path | None:
        return REPO_ROOT / raw[key] if raw.get(key) else None

    if bool(raw.get("cert")) != bool(raw.get("key")):
        raise ConfigError("give cert and key together (a client certificate needs its key)")
    auth = (raw.get("metadata") or {}).get("authorization", "")
    token = auth.removeprefix("Bearer ").strip() or None
    return Security(
        tls=not raw.get("insecure", False),
        ca=path("cacert"),
        cert=path("cert"),
        key=path("key"),
        token=None if token == TOKEN_PLACEHOLDER else token,
        server_name=raw.get("cname") or None,
    )


def load_config(path: Path) -> GhzConfig:
    raw = json.loads(path.read_text())
    data = raw.get("data", {})
    if isinstance(data, list):  # ghz sends the messages round-robin; one body here
        if not data:
            raise ConfigError("data is an empty list")
        data = data[0]
    if "{{" in json.dumps(data):
        raise ConfigError("data uses ghz template actions: only ghz itself can run it")
    concurrency = int(raw.get("concurrency", 50))
    connections = int(raw.get("connections", 1))
    duration = parse_duration(raw["duration"]) if raw.get("duration") else None
    total = int(raw["total"]) if raw.get("total") and duration is None else None
    if duration is None and total is None:
        total = 200  # ghz's default
    if concurrency < 1 or not 1 <= connections <= concurrency:
        raise ConfigError("need concurrency >= 1 and 1 <= connections <= concurrency")
    if "call" not in raw:
        raise ConfigError("no call in the config")
    return GhzConfig(
        path, raw, raw["call"], raw.get("host", ""), concurrency, connections, duration, total, data,
        _security(raw),
    )  # fmt: skip


def ghz_config(config: GhzConfig, target: str) -> dict[str, Any]:
    """What ghz is handed: paths made absolute, host replaced, TLS and token as `security`."""
    raw = {**config.raw, "host": target, "format": "json"}
    if raw.get("proto"):
        raw["proto"] = str(REPO_ROOT / raw["proto"])
    raw["import-paths"] = [str(REPO_ROOT / p) for p in raw.get("import-paths", [])]
    sec = config.security
    raw["insecure"] = not sec.tls
    for key, value in (("cacert", sec.ca), ("cert", sec.cert), ("key", sec.key)):
        raw.pop(key, None)
        if value is not None:
            raw[key] = str(value)
    metadata = {k: v for k, v in (raw.get("metadata") or {}).items() if k != "authorization"}
    if sec.token:
        metadata["authorization"] = f"Bearer {sec.token}"
    if metadata:
        raw["metadata"] = metadata
    else:
        raw.pop("metadata", None)
    return raw


def with_overrides(
    config: GhzConfig,
    ca: Path | None = None,
    cert: Path | None = None,
    key: Path | None = None,
    token: str | None = None,
) -> GhzConfig:
    """The command line's TLS files and token over the config's; TLS when any file is given.
    A config whose token is still the placeholder needs one."""
    if (cert is None) != (key is None):
        raise ConfigError("--cert and --key go together")
    sec = config.security
    if ca is not None or cert is not None:
        sec = replace(sec, tls=True, ca=ca or sec.ca, cert=cert or sec.cert, key=key or sec.key)
    if token:
        sec = replace(sec, token=token)
    auth = (config.raw.get("metadata") or {}).get("authorization", "")
    if TOKEN_PLACEHOLDER in auth and not sec.token:
        raise ConfigError(f"the config sends {TOKEN_PLACEHOLDER}: give --token or set CRM_TOKEN")
    return replace(config, security=sec)


def run_ghz(ghz: str, config: GhzConfig, target: str) -> tuple[bool, str, dict[str, Any]]:
    """ghz with the config (ghz_config); (ok, summary, ghz's report)."""
    raw = ghz_config(config, target)
    with tempfile.TemporaryDirectory(prefix="loadtest-") as tmp:
        raw["output"] = str(Path(tmp, "report.json"))
        config_path = Path(tmp, "config.json")
        config_path.write_text(json.dumps(raw))
        proc = subprocess.run(
            [ghz, "--config", str(config_path)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0 or not Path(raw["output"]).exists():
            return False, f"ghz exited {proc.returncode}: {proc.stderr.strip()[-2000:]}", {}
        report = json.loads(Path(raw["output"]).read_text())
    return summarize_ghz(report)


def summarize_ghz(report: dict[str, Any]) -> tuple[bool, str, dict[str, Any]]:
    """ghz's JSON report: fail on any status but OK; latencies are nanoseconds."""
    statuses = report.get("statusCodeDistribution") or {}
    failed = {code: n for code, n in statuses.items() if code != "OK"}
    if failed or not statuses:
        errors = report.get("errorDistribution") or {}
        return False, f"LOAD FAILED: statuses {statuses or 'none'}; errors {errors}", report
    lat = {
        f"p{d['percentage']}": d["latency"] / 1e6 for d in report.get("latencyDistribution") or []
    }
    summary = (
        f"{report['rps']:,.0f} req/s  p50 {lat.get('p50', math.nan):.2f} ms  "
        f"p99 {lat.get('p99', math.nan):.2f} ms  mean {report['average'] / 1e6:.2f} ms  "
        f"[{report['count']:,} calls, all OK]"
    )
    return True, summary, report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="a ghz JSON config")
    parser.add_argument("--target", help="host:port of the server (default: the config's host)")
    parser.add_argument("--metrics-url", help="the server's /metrics: check every call's code")
    parser.add_argument("--duration", type=float, help="seconds, instead of the config's")
    parser.add_argument("--total", type=int, help="calls, instead of the config's")
    parser.add_argument("--tool", choices=("auto", "ghz", "h2load"), default="auto")
    parser.add_argument("--server-pid", type=int, action="append", default=[], help="meter CPU")
    parser.add_argument("--json", type=Path, help="also write the result as JSON here")
    parser.add_argument("--ca", type=Path, help="PEM CA bundle to trust: TLS (ghz cacert)")
    parser.add_argument("--cert", type=Path, help="PEM client certificate, mTLS (ghz only)")
    parser.add_argument("--key", type=Path, help="PEM private key of --cert")
    parser.add_argument(
        "--token", default=os.environ.get("CRM_TOKEN") or None, help="bearer token (env CRM_TOKEN)"
    )
    args = parser.parse_args(argv)
    try:
        config = with_overrides(load_config(args.config), args.ca, args.cert, args.key, args.token)
        request = request_message(config.call, config.data)  # a typo fails here, ghz or not
    except (OSError, ValueError, KeyError) as err:  # ConfigError, json errors, missing keys
        print(f"error: {args.config}: {err}", file=sys.stderr)
        return 2
    target = args.target or config.host
    if args.duration is not None or args.total is not None:
        duration = args.duration
        total = None if duration is not None else args.total
        overrides = {"duration": f"{duration}s"} if duration is not None else {"total": total}
        raw = {k: v for k, v in config.raw.items() if k not in ("duration", "total")}
        config = replace(config, raw={**raw, **overrides}, duration_s=duration, total=total)
    ghz = shutil.which("ghz") if args.tool in ("auto", "ghz") else None
    if args.tool == "ghz" and ghz is None:
        print("error: ghz is not on PATH", file=sys.stderr)
        return 2
    tls = " over TLS" if config.security.tls else ""
    head = f"{config.call} @ {target}{tls} ({config.path.name})"
    if ghz is not None:
        ok, summary, report = run_ghz(ghz, config, target)
        print(f"ghz: {head}: {summary}", file=sys.stdout if ok else sys.stderr)
        if args.json:
            args.json.write_text(json.dumps({"tool": "ghz", "ok": ok, "report": report}, indent=2))
        return 0 if ok else 1
    try:
        result = run_h2load(
            target,
            method_path(config.call),
            request.SerializeToString(),
            config.connections,
            math.ceil(config.concurrency / config.connections),
            config.duration_s,
            requests=config.total,
            metrics_url=args.metrics_url,
            server_pids=args.server_pid,
            security=config.security,
        )
    except (H2loadUnavailable, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"h2load (ghz not on PATH): {head}", file=sys.stdout if result.ok else sys.stderr)
    print(result.summary(), file=sys.stdout if result.ok else sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({"tool": "h2load", **result.to_dict()}, indent=2) + "\n")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())

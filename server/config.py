"""The server's one typed configuration object, read once at start-up.

Every field is a CLI flag (`--max-message-mb`) and an environment variable (`CRM_MAX_MESSAGE_MB`);
the flag wins over the variable, the variable over the default (server.config_args).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.config_args import parse_config


def _opt(default: Any, help_text: str, choices: Sequence[str] | None = None) -> Any:
    return field(default=default, metadata={"help": help_text, "choices": choices})


@dataclass(frozen=True)
class ServerConfig:
    host: str = _opt(
        "",
        "address to bind the gRPC and metrics servers to; empty = 0.0.0.0 when TLS or "
        "authentication is configured, else 127.0.0.1 (a server that trusts every caller "
        "stays on this machine unless told otherwise)",
    )
    port: int = _opt(50051, "gRPC port; 0 picks a free port (logged at start-up)")
    metrics_port: int = _opt(
        9095, "Prometheus /metrics HTTP port; 0 picks a free port, -1 disables"
    )
    metrics_host: str = _opt("", "address to bind /metrics to; empty = the same as --host")
    metrics_tls: bool = _opt(
        False, "serve /metrics over HTTPS with --tls-cert/--tls-key (re-read when they change)"
    )
    tls_cert: Path | None = _opt(
        None, "PEM certificate chain for TLS on the gRPC port (with --tls-key); unset = plaintext"
    )
    tls_key: Path | None = _opt(None, "PEM private key of --tls-cert")
    tls_client_ca: Path | None = _opt(
        None, "PEM CA bundle: when set, clients must present a certificate it signed (mTLS)"
    )
    artifacts: Path = _opt(Path("artifacts"), "artifacts directory: <model>/<version>/")
    data_dir: Path = _opt(
        Path("data"), "directory for what the server stores (integrity logs, campaigns)"
    )
    max_message_mb: int = _opt(64, "largest gRPC message accepted or sent, in MiB")
    log_level: str = _opt(
        "INFO", "log level", choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
    )
    log_format: str = _opt("json", "log line format", choices=("json", "text"))
    grace_seconds: float = _opt(10.0, "on SIGTERM/SIGINT, how long in-flight calls may finish")
    max_connection_age_seconds: float = _opt(
        300.0,
        "close each client connection (GOAWAY) after this long, so clients rebalance onto "
        "replicas added since; 0 = never",
    )
    health_port: int = _opt(
        -1,
        "a plaintext port serving only grpc.health.v1, for probes that cannot speak TLS "
        "(kubelet's native gRPC probes); 0 picks a free port, -1 disables",
    )
    workers: int = _opt(1, "server processes sharing the port (SO_REUSEPORT); 1 = no supervisor")
    worker_id: int = _opt(0, "internal: set by the supervisor for each worker process")
    pin_cpus: bool = _opt(
        True,
        "pin the server to one core (worker K to core K-1 modulo the usable cores); "
        "false lets --ort-threads > 1 use more cores",
    )
    threads: int = _opt(32, "gRPC handler threads (streaming calls but health Watch hold one each)")
    max_open_streams: int = _opt(
        0,
        "streaming calls open at once per process (each holds a handler thread); more get "
        "RESOURCE_EXHAUSTED, so unary calls keep the other threads. 0 = half of --threads (at least 1)",
    )
    max_concurrent_rpcs: int = _opt(1000, "calls above this get RESOURCE_EXHAUSTED at once")
    max_request_rows: int = _opt(
        100_000,
        "most rows in one request: customers, lines, inventory items, leaves (INVALID_ARGUMENT above); the batcher's own bound is --batch-max-rows",
    )
    max_health_watches: int = _opt(
        256,
        "health Watch streams open at once per process (they hold no thread, but memory); "
        "more get RESOURCE_EXHAUSTED",
    )
    max_integrity_logs: int = _opt(
        1000,
        "integrity logs in one data dir; appending to a new log beyond it is RESOURCE_EXHAUSTED",
    )
    max_leaf_kib: int = _opt(
        1024,
        "largest integrity leaf in KiB (INVALID_ARGUMENT above); never more than one GetLeaves "
        "response carries",
    )
    max_append_mb: int = _opt(16, "most leaf bytes in one integrity append, in MiB")
    max_campaign_kib: int = _opt(
        16 * 1024,
        "largest saved campaign in KiB (INVALID_ARGUMENT above); never more than one "
        "ListCampaigns response carries",
    )
    ort_threads: int = _opt(1, "onnxruntime intra-op threads per model session")
    tree_evaluator: bool = _opt(
        True,
        "score a model's tree ensemble in C (crm.trees) when a probe at load is bitwise equal "
        "to onnxruntime; false = onnxruntime runs every graph",
    )
    batch_max_rows: int = _opt(1024, "dynamic batching: most rows merged into one model call")
    batch_preferred_rows: int = _opt(64, "dynamic batching: a leader may wait for this many rows")
    batch_queue_delay_us: int = _opt(
        500,
        "dynamic batching: most microseconds a leader waits for company while calls overlap (0 = never)",
    )
    batching: str = _opt(
        "", "per-model batching overrides, e.g. 'churn=max_rows:512,preferred_rows:32,delay_us:200'"
    )
    alert_queue_size: int = _opt(1000, "churn alerts buffered per subscriber before drop-oldest")
    freshness_poll_seconds: float = _opt(
        1.0,
        "how often the server applies lines other processes or replicas ingested and checks "
        "for a new UTC day (then ages every customer's features in bulk); 0 = only on calls",
    )
    ingest_integrity_log: str = _opt(
        "",
        "an integrity log whose AppendTransactions lines are also ingested (keyed by invoice "
        "and position in the log), as IngestTransactions would; empty = none",
    )
    test_clock_file: str = _opt(
        "",
        "TEST MODE ONLY: read the server's 'now' from this file (an ISO time, re-read when it "
        "changes) instead of the system clock, so tests move days ahead; empty = system clock",
    )
    reload_interval_seconds: float = _opt(
        5.0, "how often to rescan --artifacts; 0 disables watching"
    )
    keep_versions: int = _opt(2, "versions kept loaded per model (for pinning and in-flight calls)")
    pin: str = _opt("", "serve fixed versions, e.g. 'churn=3,spend=2'")
    # Authentication is on when any key source (or auth_mtls_identity) is configured.
    auth_hmac_secret_file: str = _opt(
        "", "file holding the shared HMAC secret that verifies HS256 bearer tokens"
    )
    auth_public_keys: str = _opt(
        "", "comma-separated PEM public key files that verify RS256 (RSA) / ES256 (P-256) tokens"
    )
    auth_jwks_file: str = _opt("", "local JWKS file whose keys verify bearer tokens")
    auth_issuer: str = _opt("", "required `iss` of tokens (unchecked when empty)")
    auth_audience: str = _opt(
        "", "required `aud` of tokens (when empty, a token carrying an `aud` is refused)"
    )
    auth_leeway_seconds: float = _opt(30.0, "clock skew allowed on exp and nbf, in seconds")
    auth_tenant_claim: str = _opt("tenant", "the token claim that names the caller's tenant")
    auth_mtls_identity: bool = _opt(
        False,
        "a call without a token but with a verified client certificate runs as the "
        "certificate's subject CN, with the scopes --mtls-scopes gives it",
    )
    mtls_scopes: str = _opt(
        "", "scopes of client certificates, e.g. 'CN=svc-a:score,alerts;CN=svc-b:*'"
    )
    open_reflection: bool = _opt(False, "server reflection without credentials (else needs admin)")
    rate_limits: str = _opt(
        "",
        "token buckets per tenant and per caller for each scope, RATE/s (or /m) and burst, "
        "e.g. 'score=200/s:400,campaign:write=5/s:10'",
    )
    audit_log: str = _opt(
        "",
        "audit trail of writes, admin calls and refusals: a file (appended), - for stderr, "
        "or empty for the crm.audit logger",
    )
    tenants: bool = _opt(
        False,
        "each verified token's tenant gets its own models (<artifacts>/<tenant>/), integrity "
        "logs and campaigns (<data-dir>/<tenant>/), alerts and statistics; needs authentication",
    )
    max_tenants: int = _opt(100, "tenants served at once per process (RESOURCE_EXHAUSTED beyond)")
    metrics_tenant_label: bool = _opt(
        False, "count calls per tenant in crm_tenant_calls_total (a series per tenant)"
    )
    # -- shared state across replicas (server.stores) --
    store_url: str = _opt(
        "",
        "where integrity logs, saved campaigns and ingested transaction lines live: empty = "
        "SQLite files under --data-dir; "
        "postgresql://user@host:port/db = one PostgreSQL database replicas share",
    )
    signing_key_file: str = _opt(
        "",
        "Ed25519 PEM key signing tree heads (the file every replica mounts; required with a "
        "postgresql store); empty = a key created in --data-dir on first start",
    )

    def _store_problems(self) -> list[str]:
        """A PostgreSQL store is shared, so its signing key must be too (not one per replica)."""
        if self.store_url and not self.store_url.startswith(("postgresql://", "postgres://")):
            return ["store_url must be empty (SQLite in --data-dir) or postgresql://..."]
        if self.store_url and not self.signing_key_file:
            return ["a postgresql store_url needs signing_key_file (one key every replica mounts)"]
        return []

    def __post_init__(self) -> None:
        problems = []
        if not 0 <= self.port <= 65535:
            problems.append(f"port {self.port} out of range 0..65535")
        if not -1 <= self.health_port <= 65535:
            problems.append(f"health_port {self.health_port} out of range -1..65535")
        if not -1 <= self.metrics_port <= 65535:
            problems.append(f"metrics_port {self.metrics_port} out of range -1..65535")
        if self.max_message_mb < 1:
            problems.append("max_message_mb must be >= 1")
        if self.grace_seconds < 0:
            problems.append("grace_seconds must be >= 0")
        if self.max_connection_age_seconds < 0:
            problems.append("max_connection_age_seconds must be >= 0")
        if self.workers < 1 or self.worker_id < 0:
            problems.append("workers must be >= 1 and worker_id >= 0")
        if self.threads < 1 or self.ort_threads < 1 or self.keep_versions < 1:
            problems.append("threads, ort_threads and keep_versions must be >= 1")
        if self.max_open_streams < 0 or 0 < self.threads <= self.max_open_streams:
            problems.append(
                "max_open_streams must be 0 (half of threads) or below threads: "
                "unary calls need a thread of their own"
            )
        if self.batch_max_rows < 1 or self.batch_preferred_rows < 1 or self.alert_queue_size < 1:
            problems.append("batch_max_rows, batch_preferred_rows, alert_queue_size must be >= 1")
        if self.freshness_poll_seconds < 0:
            problems.append("freshness_poll_seconds must be >= 0")
        if self.batch_queue_delay_us < 0:
            problems.append("batch_queue_delay_us must be >= 0")
        if self.max_request_rows < 1:
            problems.append("max_request_rows must be >= 1")
        for name in (
            "max_health_watches",
            "max_integrity_logs",
            "max_leaf_kib",
            "max_append_mb",
            "max_campaign_kib",
            "max_tenants",
        ):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1")
        problems += self._tls_problems()
        problems += self._store_problems()
        try:
            self.pinned_versions()
            self.batching_overrides()
        except ValueError as err:
            problems.append(str(err))
        problems.extend(self._security_problems())
        if problems:
            raise ValueError("invalid configuration: " + "; ".join(problems))

    def _security_problems(self) -> list[str]:
        from server.security.ratelimit import parse_rate_limits
        from server.security.tokens import parse_mtls_scopes

        problems = []
        if self.tenants and not self.auth_configured:
            problems.append("tenants needs authentication: the tenant comes from the token")
        if self.auth_leeway_seconds < 0:
            problems.append("auth_leeway_seconds must be >= 0")
        if not self.auth_tenant_claim:
            problems.append("auth_tenant_claim must not be empty")
        for parse, text in (
            (parse_rate_limits, self.rate_limits),
            (parse_mtls_scopes, self.mtls_scopes),
        ):
            try:
                parse(text)
            except ValueError as err:
                problems.append(str(err))
        return problems

    def _tls_problems(self) -> list[str]:
        """Certificate and key go together; mTLS and HTTPS /metrics need them; files must exist
        (they are parsed at start-up, and re-read on rotation, by server.security.tls)."""
        problems = []
        if (self.tls_cert is None) != (self.tls_key is None):
            problems.append("tls_cert and tls_key must be given together")
        if self.tls_cert is None and self.tls_client_ca is not None:
            problems.append("tls_client_ca (mTLS) needs tls_cert and tls_key")
        if self.tls_cert is None and self.metrics_tls:
            problems.append("metrics_tls needs tls_cert and tls_key")
        for name in ("tls_cert", "tls_key", "tls_client_ca"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                problems.append(f"{name} {path}: no such file")
        return problems

    @property
    def tls_mode(self) -> str:
        """ "off", "tls" (server certificate only) or "mtls" (client certificates required)."""
        if self.tls_cert is None:
            return "off"
        return "mtls" if self.tls_client_ca is not None else "tls"

    @property
    def auth_configured(self) -> bool:
        """Whether calls must carry credentials (any token key source, or mTLS identity)."""
        return bool(
            self.auth_hmac_secret_file
            or self.auth_public_keys
            or self.auth_jwks_file
            or self.auth_mtls_identity
        )

    @property
    def bind_host(self) -> str:
        """--host, or the safe default: loopback unless TLS or authentication is on."""
        if self.host:
            return self.host
        return "0.0.0.0" if self.tls_cert is not None or self.auth_configured else "127.0.0.1"

    @property
    def metrics_bind_host(self) -> str:
        return self.metrics_host or self.bind_host

    @property
    def stream_limit(self) -> int:
        """Streams open at once per process: --max-open-streams, or half the handler threads."""
        return self.max_open_streams or max(1, self.threads // 2)

    @property
    def max_message_bytes(self) -> int:
        return self.max_message_mb * 1024 * 1024

    def pinned_versions(self) -> dict[str, int]:
        pins: dict[str, int] = {}
        for item in filter(None, (p.strip() for p in self.pin.split(","))):
            name, sep, version = item.partition("=")
            if not sep or not version.strip().isdigit():
                raise ValueError(f"pin {item!r} is not NAME=VERSION")
            pins[name.strip()] = int(version)
        return pins

    def batching_overrides(self) -> dict[str, dict[str, int]]:
        """'churn=max_rows:512,delay_us:200;spend=max_rows:64' -> {model: {key: value}}."""
        keys = {"max_rows", "preferred_rows", "delay_us"}
        out: dict[str, dict[str, int]] = {}
        for part in filter(None, (p.strip() for p in self.batching.split(";"))):
            name, sep, settings = part.partition("=")
            if not sep or not name.strip():
                raise ValueError(f"batching {part!r} is not MODEL=key:value,...")
            model = out.setdefault(name.strip(), {})
            for item in filter(None, (s.strip() for s in settings.split(","))):
                key, sep, value = item.partition(":")
                if not sep or key not in keys or not value.isdigit():
                    raise ValueError(f"batching {item!r}: use {sorted(keys)} with whole numbers")
                model[key] = int(value)
        return out

    @classmethod
    def from_args(
        cls, argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None
    ) -> ServerConfig:
        """The configuration from flags (`argv`, else sys.argv) over `CRM_*` variables (`env`,
        else the process environment) over the defaults; exits with usage on a bad value."""
        return parse_config(cls, argv, os.environ if env is None else env)

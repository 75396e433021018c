"""TLS and mTLS on a real server (`python -m server` on loopback) with real certificates.

TLS only, mTLS (a client without a certificate is refused at the handshake), rotation without
a restart, /metrics over HTTPS on its own address, workers, and the client side: the typed
client, `crm-client` and the bearer token every call carries.
"""

from __future__ import annotations

import http.client
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent import futures
from pathlib import Path

import grpc
import pytest
import trustme
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from clients import CrmClient, CrmError
from clients.channel import open_channel
from tests.helpers import run_cli, sample
from tests.security.conftest import METRICS_HOST, Pki, issue, tls_args, write_atomically
from tests.serverproc import REPO, RunningServer

UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


def _listening(server: RunningServer) -> dict:
    (line,) = [r for r in server.log_records() if r.get("msg") == "listening"]
    return line


def _health(server: RunningServer, pki: Pki | None, *, client_cert: bool = False) -> str:
    """Health Check of the whole server over a fresh channel (so a fresh handshake)."""
    kwargs = {}
    if pki is not None:
        kwargs["ca"] = pki.ca_pem
        if client_cert:
            kwargs.update(cert=pki.client_cert, key=pki.client_key)
    with CrmClient(server.target, timeout=5, **kwargs) as client:
        return client.health()


def _refused(server: RunningServer, pki: Pki | None, **kwargs: bool) -> grpc.StatusCode:
    with pytest.raises(CrmError) as err:
        _health(server, pki, **kwargs)
    return err.value.code


def _scrape_https(url: str, ca: Path) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    context = ssl.create_default_context(cafile=str(ca))
    text = urllib.request.urlopen(url, timeout=5, context=context).read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _metrics_url(server: RunningServer) -> str:
    line = _listening(server)
    assert line["metrics_tls"] is True and line["metrics_host"] == METRICS_HOST
    return f"https://{METRICS_HOST}:{line['metrics_port']}/metrics"


# -- TLS only --------------------------------------------------------------------------------
def test_tls_serves_clients_that_trust_its_ca_and_no_one_else(
    start_server, pki: Pki, other_pki: Pki
) -> None:
    server = start_server(extra_args=tls_args(pki))
    assert _listening(server)["tls"] == "tls"
    with CrmClient(server.target, ca=pki.ca_pem, timeout=5) as client:
        assert client.health() == "SERVING"
        assert client.health("crm.v1.ChurnService") == "NOT_SERVING"  # no models: an answer
        assert client.list_models() == []
    assert _refused(server, None) == UNAVAILABLE  # plaintext client
    assert _refused(server, other_pki) == UNAVAILABLE  # trusts another CA only
    # A client certificate is not needed without --tls-client-ca, but is accepted.
    assert _health(server, pki, client_cert=True) == "SERVING"


def test_health_check_over_tls_through_the_raw_health_stub(start_server, pki: Pki) -> None:
    """What a Kubernetes-style probe or any plain gRPC health client does."""
    server = start_server(extra_args=tls_args(pki))
    with open_channel(server.target, ca=pki.ca_pem) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=5
        )
    assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_crm_client_cli_takes_a_ca(start_server, pki: Pki) -> None:
    server = start_server(extra_args=tls_args(pki))
    ok = run_cli("--target", server.target, "--ca", str(pki.ca_pem), "--timeout", "5", "health")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "(server): SERVING" in ok.stdout
    plain = run_cli("--target", server.target, "--timeout", "5", "health")
    assert plain.returncode == 2 and "UNAVAILABLE" in plain.stderr
    half = run_cli("--target", server.target, "--cert", str(pki.client_cert), "health")
    assert half.returncode == 2 and "--cert and --key go together" in half.stderr


def test_unusable_certificate_files_stop_the_start_up(start_server, pki: Pki, tmp_path) -> None:
    garbage = tmp_path / "cert.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    with pytest.raises(RuntimeError, match="exited with 2") as err:
        start_server(extra_args=["--tls-cert", str(garbage), "--tls-key", str(pki.server_key)])
    assert "cannot serve TLS" in str(err.value)
    # A key that is not the certificate's (the client's key with the server's certificate).
    with pytest.raises(RuntimeError, match="exited with 2") as err:
        start_server(
            extra_args=["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.client_key)]
        )
    assert "is not the key of the first certificate" in str(err.value)


def test_the_health_port_answers_plaintext_probes_beside_a_tls_port(start_server, pki: Pki) -> None:
    """kubelet's native gRPC probe cannot speak TLS: --health-port serves health alone, in
    plaintext, with the main port's answers, and no other service."""
    server = start_server(extra_args=[*tls_args(pki), "--health-port", "0"])
    port = _listening(server)["health_port"]
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service, status in (("", "SERVING"), ("crm.v1.ChurnService", "NOT_SERVING")):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status) == status
        models = channel.unary_unary("/crm.v1.ModelService/ListModels")
        with pytest.raises(grpc.RpcError) as err:
            models(b"", timeout=5)
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert _refused(server, None) == UNAVAILABLE  # the main port still wants TLS


# -- mutual TLS -------------------------------------------------------------------------------
def test_mtls_refuses_a_client_without_a_certificate_at_the_handshake(
    start_server, pki: Pki, other_pki: Pki
) -> None:
    server = start_server(extra_args=tls_args(pki, client_ca=True))
    assert _listening(server)["tls"] == "mtls"
    assert _health(server, pki, client_cert=True) == "SERVING"

    with open_channel(server.target, ca=pki.ca_pem) as channel:  # trusts the server, no cert
        with pytest.raises(grpc.RpcError) as err:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert err.value.code() == UNAVAILABLE
    # A certificate from a CA the server does not trust is refused the same way.
    foreign = Pki(pki.ca, pki.ca_pem, pki.server_cert, pki.server_key, other_pki.client_cert,
                  other_pki.client_key)  # fmt: skip
    assert _refused(server, foreign, client_cert=True) == UNAVAILABLE
    # No refused call reached the server: only the one good Check was ever started.
    started = sample(_scrape(server), "grpc_server_started_total", grpc_method="Check")
    assert started == 1


def _scrape(server: RunningServer) -> dict:
    from tests.helpers import scrape

    return scrape(server.metrics_url)


# -- rotation -------------------------------------------------------------------------------
def test_a_rotated_certificate_takes_effect_without_a_restart(
    start_server, pki: Pki, tmp_path: Path
) -> None:
    live = tmp_path / "live"
    live.mkdir()
    cert, key = live / "server.pem", live / "server-key.pem"
    cert.write_bytes(pki.server_cert.read_bytes())
    key.write_bytes(pki.server_key.read_bytes())
    args = ["--tls-cert", str(cert), "--tls-key", str(key), "--metrics-tls", "true", "--metrics-host",
            METRICS_HOST]  # fmt: skip
    server = start_server(extra_args=args)
    url = _metrics_url(server)
    assert _health(server, pki) == "SERVING"
    assert _scrape_https(url, pki.ca_pem)
    new = issue(trustme.CA(), tmp_path / "new")

    # Half-written: the new certificate is in place, its key not yet. The next handshake sees
    # the change, cannot use it, warns once and keeps serving the old certificate.
    cert.write_bytes(new.server_cert.read_bytes())
    assert _health(server, pki) == "SERVING"
    assert _refused(server, new) == UNAVAILABLE
    _wait_for(lambda: any("cannot be used" in r.get("msg", "") for r in server.log_records()))
    assert server.proc.poll() is None

    # The key arrives: new connections get the new certificate, the old CA is refused.
    write_atomically(key, new.server_key.read_bytes())
    _wait_for(lambda: _health_or_none(server, new) == "SERVING")
    assert _refused(server, pki) == UNAVAILABLE
    assert _scrape_https(url, new.ca_pem)  # /metrics rotated too
    with pytest.raises(urllib.error.URLError) as err:
        _scrape_https(url, pki.ca_pem)
    assert isinstance(err.value.reason, ssl.SSLCertVerificationError)
    assert server.proc.poll() is None
    assert sum(r.get("msg") == "listening" for r in server.log_records()) == 1  # no restart


def _health_or_none(server: RunningServer, pki: Pki) -> str | None:
    try:
        return _health(server, pki)
    except CrmError:
        return None


def _wait_for(condition, timeout_s: float = 15.0) -> None:
    """Poll with a deadline: the server gives no event for 'I saw your new files'."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.05)


# -- /metrics over HTTPS on its own address --------------------------------------------------
def test_metrics_over_https_on_their_own_host(start_server, pki: Pki, other_pki: Pki) -> None:
    server = start_server(extra_args=[*tls_args(pki), "--metrics-tls", "true", "--metrics-host",
                                      METRICS_HOST])  # fmt: skip
    url = _metrics_url(server)
    assert _health(server, pki) == "SERVING"
    samples = _scrape_https(url, pki.ca_pem)
    assert sample(samples, "grpc_server_handled_total", grpc_method="Check", grpc_code="OK") == 1
    port = _listening(server)["metrics_port"]
    with pytest.raises(urllib.error.URLError) as err:
        _scrape_https(url, other_pki.ca_pem)
    assert isinstance(err.value.reason, ssl.SSLCertVerificationError)
    with pytest.raises((OSError, http.client.HTTPException)):  # plain HTTP to the HTTPS port
        urllib.request.urlopen(f"http://{METRICS_HOST}:{port}/metrics", timeout=5).read()
    with pytest.raises(urllib.error.URLError) as err:  # not bound on --host
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert isinstance(err.value.reason, ConnectionRefusedError)


def test_workers_serve_tls_and_https_metrics(start_server, pki: Pki) -> None:
    server = start_server(extra_args=[*tls_args(pki, client_ca=True), "--metrics-tls", "true",
                                      "--metrics-host", METRICS_HOST, "--workers", "2"])  # fmt: skip
    assert _listening(server)["tls"] == "mtls"
    for _ in range(4):  # new connections: SO_REUSEPORT spreads them over both workers
        assert _health(server, pki, client_cert=True) == "SERVING"
    assert _refused(server, pki) == UNAVAILABLE  # no client certificate
    samples = _scrape_https(_metrics_url(server), pki.ca_pem)
    assert sample(samples, "grpc_server_handled_total", grpc_method="Check", grpc_code="OK") == 4
    assert server.stop() == 0


# -- the bearer token on every call -----------------------------------------------------------
class _SeenMetadata(grpc.ServerInterceptor):
    def __init__(self) -> None:
        self.authorization: list[str | None] = []

    def intercept_service(self, continuation, handler_call_details):
        metadata = dict(handler_call_details.invocation_metadata or ())
        self.authorization.append(metadata.get("authorization"))
        return continuation(handler_call_details)


@pytest.fixture
def metadata_server(pki: Pki):
    """A real gRPC server (grpc's own health servicer) that records each call's authorization
    metadata; on one plaintext and one TLS port. The checking side is not this test's subject."""
    seen = _SeenMetadata()
    server = grpc.server(futures.ThreadPoolExecutor(2), interceptors=[seen])
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    plain = server.add_insecure_port("127.0.0.1:0")
    credentials = grpc.ssl_server_credentials(
        [(pki.server_key.read_bytes(), pki.server_cert.read_bytes())]
    )
    secure = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    yield seen, f"127.0.0.1:{plain}", f"127.0.0.1:{secure}"
    server.stop(None)


def test_the_token_goes_out_on_every_call_over_tls_and_plaintext(metadata_server, pki: Pki) -> None:
    seen, plain, secure = metadata_server
    with CrmClient(plain, token="tok-plain", timeout=5) as client:
        client.health()
        client.health()
    with CrmClient(secure, ca=pki.ca_pem, token="tok-tls", timeout=5) as client:
        client.health()
    with CrmClient(secure, ca=pki.ca_pem, timeout=5) as client:
        client.health()
    assert seen.authorization == ["Bearer tok-plain", "Bearer tok-plain", "Bearer tok-tls", None]
    with pytest.raises(ValueError):
        CrmClient(plain, token="two\nlines")


def test_crm_client_cli_reads_the_token_from_the_environment(
    metadata_server, pki: Pki, monkeypatch
) -> None:
    seen, _, secure = metadata_server
    monkeypatch.setenv("CRM_TOKEN", "tok-env")
    result = run_cli("--target", secure, "--ca", str(pki.ca_pem), "--timeout", "5", "health")
    assert result.returncode == 0, result.stdout + result.stderr
    result = run_cli("--target", secure, "--ca", str(pki.ca_pem), "--token", "tok-flag", "health")
    assert result.returncode == 0, result.stdout + result.stderr
    assert seen.authorization == ["Bearer tok-env", "Bearer tok-flag"]


# -- make loadtest (benchmarks/loadtest.py) against a TLS server ---------------------------------
needs_h2load = pytest.mark.skipif(shutil.which("h2load") is None, reason="h2load not installed")


def _loadtest(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "benchmarks.loadtest", "--tool", "h2load", *args]
    return subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


@needs_h2load
def test_loadtest_runs_h2load_over_tls_and_refuses_mtls(start_server, pki: Pki) -> None:
    """h2load over https; the probes verify with --ca and the run is counted through /metrics
    over HTTPS. h2load cannot present a client certificate: asked to, loadtest says so."""
    server = start_server(extra_args=[*tls_args(pki), "--metrics-tls", "true", "--metrics-host",
                                      METRICS_HOST])  # fmt: skip
    config = str(REPO / "clients" / "ghz" / "health.Check.json")
    common = ["--config", config, "--target", server.target, "--total", "50"]
    ok = _loadtest(*common, "--ca", str(pki.ca_pem), "--metrics-url", _metrics_url(server))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "over TLS" in ok.stdout and "server OK +50" in ok.stdout
    plain = _loadtest(*common)  # plaintext h2load and probes against the TLS port
    assert plain.returncode == 1 and "probe calls: UNAVAILABLE" in plain.stderr
    mtls = _loadtest(*common, "--ca", str(pki.ca_pem), "--cert", str(pki.client_cert),
                     "--key", str(pki.client_key))  # fmt: skip
    assert mtls.returncode == 2 and "cannot present a client certificate" in mtls.stderr

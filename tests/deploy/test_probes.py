"""The probes the Deployment names answer on a real server run with the Deployment's args."""

from __future__ import annotations

from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.deploy.manifests import Deployed, container

PROBES = ("startupProbe", "readinessProbe", "livenessProbe")


def _probes() -> dict[str, dict[str, Any]]:
    return {name: container()[name]["grpc"] for name in PROBES}


def _health_port(deployed: Deployed) -> int:
    (line,) = [r for r in deployed.server.log_records() if r.get("msg") == "listening"]
    return int(line["health_port"])


def test_probes_are_native_grpc_on_the_health_port_and_readiness_needs_models() -> None:
    probes = _probes()
    assert {name: p.get("service", "") for name, p in probes.items()} == {
        "startupProbe": "",
        "livenessProbe": "",
        "readinessProbe": "crm.v1.ChurnService",
    }
    assert {p["port"] for p in probes.values()} == {8081}
    assert "--health-port=8081" in container()["args"]
    assert {"name": "health", "containerPort": 8081, "protocol": "TCP"} in container()["ports"]


def _check(port: int, service: str) -> int:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=10
            )
        except grpc.RpcError as err:  # an unknown service: NOT_FOUND, a failed probe
            assert err.code() == grpc.StatusCode.NOT_FOUND
            return health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
    return reply.status


def test_each_probe_passes_on_the_real_server(deployed: Deployed) -> None:
    """What kubelet does: a plaintext Check of the probe's service on its port."""
    port = _health_port(deployed)
    for name, probe in _probes().items():
        assert _check(port, probe.get("service", "")) == health_pb2.HealthCheckResponse.SERVING, (
            name
        )


def test_probed_services_serving_over_tls_too(deployed: Deployed) -> None:
    creds = grpc.ssl_channel_credentials(deployed.ca.read_bytes())
    target = f"localhost:{deployed.server.port}"
    with grpc.secure_channel(target, creds) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for probe in _probes().values():
            service = probe.get("service", "")
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, service


def test_probe_fails_when_the_service_is_unknown(deployed: Deployed) -> None:
    """A probe that reports failure when it should: an unknown service is not SERVING."""
    port = _health_port(deployed)
    assert _check(port, "crm.v1.NoSuchService") != health_pb2.HealthCheckResponse.SERVING

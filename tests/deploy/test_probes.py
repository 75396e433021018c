"""The probes the Deployment names answer on a real server run with the Deployment's args."""

from __future__ import annotations

import subprocess

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.deploy.manifests import Deployed, container

PROBES = ("startupProbe", "readinessProbe", "livenessProbe")


def _probe_commands() -> dict[str, list[str]]:
    return {name: container()[name]["exec"]["command"] for name in PROBES}


def test_probes_check_grpc_health_and_readiness_needs_models() -> None:
    commands = _probe_commands()
    service = {name: cmd[cmd.index("--service") + 1] for name, cmd in commands.items()}
    assert service == {
        "startupProbe": "",
        "livenessProbe": "",
        "readinessProbe": "crm.v1.ChurnService",
    }
    for cmd in commands.values():
        assert cmd[cmd.index("--target") + 1] == "localhost:50051"


def test_each_probe_command_passes_on_the_real_server(deployed: Deployed) -> None:
    for name in PROBES:
        proc = subprocess.run(
            deployed.probe(name), capture_output=True, text=True, timeout=30, check=False
        )
        assert proc.returncode == 0, (name, proc.stdout, proc.stderr)
        assert proc.stdout.strip().endswith("SERVING"), proc.stdout


def test_probed_services_serving_over_tls(deployed: Deployed) -> None:
    creds = grpc.ssl_channel_credentials(deployed.ca.read_bytes())
    target = f"localhost:{deployed.server.port}"
    with grpc.secure_channel(target, creds) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for cmd in _probe_commands().values():
            service = cmd[cmd.index("--service") + 1]
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, service


def test_probe_fails_when_the_service_is_unknown(deployed: Deployed) -> None:
    """A probe that reports failure when it should: an unknown service is not SERVING."""
    cmd = deployed.probe("readinessProbe")
    cmd[-1] = "crm.v1.NoSuchService"
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode != 0

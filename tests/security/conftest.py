"""Real certificates from test CAs (trustme): a server certificate for the loopback names,
client certificates, and a second CA nobody configured, written to PEM files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

# The names the server certificate carries: gRPC on 127.0.0.1, /metrics on its own address.
SERVER_NAMES = ("127.0.0.1", "localhost", "127.0.0.2")
METRICS_HOST = "127.0.0.2"


@dataclass(frozen=True)
class Pki:
    """One CA and what it issued, as files."""

    ca: trustme.CA
    ca_pem: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def write_atomically(path: Path, data: bytes) -> None:
    """How a careful rotation writes: a new file renamed over the old one."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def issue(ca: trustme.CA, out: Path) -> Pki:
    out.mkdir(parents=True, exist_ok=True)
    server = ca.issue_cert(*SERVER_NAMES)
    client = ca.issue_cert("client@crm.test", common_name="crm-test-client")
    files = Pki(
        ca,
        out / "ca.pem",
        out / "server.pem",
        out / "server-key.pem",
        out / "client.pem",
        out / "client-key.pem",
    )
    ca.cert_pem.write_to_path(str(files.ca_pem))
    files.server_cert.write_bytes(b"".join(b.bytes() for b in server.cert_chain_pems))
    files.server_key.write_bytes(server.private_key_pem.bytes())
    files.client_cert.write_bytes(b"".join(b.bytes() for b in client.cert_chain_pems))
    files.client_key.write_bytes(client.private_key_pem.bytes())
    return files


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """The CA the servers under test are configured with."""
    return issue(trustme.CA(), tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA no server trusts and no client should trust: its certificates must be refused."""
    return issue(trustme.CA(), tmp_path_factory.mktemp("other-pki"))


def tls_args(pki: Pki, *, client_ca: bool = False) -> list[str]:
    args = ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key)]
    return [*args, "--tls-client-ca", str(pki.ca_pem)] if client_ca else args

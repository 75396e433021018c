"""The files under deploy/, read as the tests need them, and the Deployment's container run as
a real server on loopback: its own args, with the mounted paths pointed at test files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from server.security.mint import write_keys
from tests.serverproc import REPO, RunningServer, launch

DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
# Flags the test sets itself: loopback and free ports (tests.serverproc.launch).
OWN_FLAGS = ("--host", "--port", "--metrics-port", "--health-port")


def k8s_objects() -> list[dict[str, Any]]:
    return [doc for f in sorted(K8S.glob("*.yaml")) for doc in yaml.safe_load_all(f.read_text())]


def k8s_object(kind: str, name: str = "crm-serving") -> dict[str, Any]:
    (found,) = [o for o in k8s_objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def container() -> dict[str, Any]:
    return k8s_object("Deployment")["spec"]["template"]["spec"]["containers"][0]


def tool(name: str) -> str:
    """A validator: from .venv/bin (PyPI) or PATH (Debian); missing fails in CI, else skips."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed (.ci/run and `make install` install it)")
        pytest.skip(f"{name} is not installed")
    return found


@dataclass
class Deployed:
    server: RunningServer
    mounts: dict[str, Path]  # container path prefix -> test path
    ca: Path
    hmac_key: Path


def _mapped(value: str, mounts: dict[str, Path]) -> str:
    """A container path as the test's path (the Secret's files, the artifacts, the data dir)."""
    for prefix, path in mounts.items():
        if value.startswith(prefix):
            return str(path) + value[len(prefix) :]
    return value


def _mounted_files(root: Path) -> dict[str, Path]:
    """What the Secrets hold, made the way README "Deploying" makes them."""
    tls, auth, signing = root / "tls", root / "auth", root / "signing"
    tls.mkdir()
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.private_key_pem.write_to_path(str(tls / "tls.key"))
    cert.cert_chain_pems[0].write_to_path(str(tls / "tls.crt"))
    ca.cert_pem.write_to_path(str(tls / "ca.crt"))
    write_keys(auth, "HS256")  # = crm-server keys --out auth
    signing.mkdir()
    subprocess.run(
        [sys.executable, "-m", "server.integrity.signer", str(signing / "sth-ed25519.pem")],
        cwd=REPO, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return {"/etc/crm/tls": tls, "/etc/crm/auth": auth, "/etc/crm/signing": signing}


def deployment_args(mounts: dict[str, Path]) -> list[str]:
    out = []
    for arg in container()["args"]:
        if arg.split("=", 1)[0] in OWN_FLAGS:
            continue
        flag, _, value = arg.partition("=")
        out.append(f"{flag}={_mapped(value, mounts)}" if value else flag)
    return out


def start_deployed(root: Path, artifacts: Path, extra: list[str]) -> Iterator[Deployed]:
    mounts = _mounted_files(root)
    mounts |= {"/app/artifacts": artifacts, "/data": root / "data"}
    server = launch(artifacts, root / "data", [*deployment_args(mounts), *extra])
    try:
        yield Deployed(server, mounts, mounts["/etc/crm/tls"] / "ca.crt",
                       mounts["/etc/crm/auth"] / "hmac.key")  # fmt: skip
    finally:
        server.kill()

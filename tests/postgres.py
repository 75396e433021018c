"""A throwaway PostgreSQL cluster for the tests: started once per test run, a fresh database
per test.

Debian's server binaries (`apt-get install postgresql`; `.ci/run` installs them) refuse to run
as root, so as root the cluster is created and run as the `postgres` user in a temp dir it owns.
It listens on a free loopback port with its socket in that dir, trusts local connections and
trades durability for speed (fsync off): the tests check what the server commits, not the disk.
Without the binaries the tests that need it are skipped with the reason.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_BIN_ROOT = Path("/usr/lib/postgresql")
START_TIMEOUT_S = 60


def _bin_dir() -> Path | None:
    """The newest installed server's bin dir (Debian puts one per major version)."""
    versions = sorted(
        (p for p in PG_BIN_ROOT.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    return versions[-1] if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgCluster:
    """A running cluster; `url(db)` is a postgresql:// URL for one of its databases."""

    root: Path
    port: int
    bin_dir: Path
    user: str

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:16]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _as_owner(cmd: list[str], owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--", *cmd] if owner else cmd


def start_cluster() -> tuple[PgCluster, str | None]:
    """initdb + pg_ctl start in a new temp dir; returns the cluster and who owns it."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql)")
    owner = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="crm-pg-"))
    if owner:
        entry = pwd.getpwnam(owner)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    user = owner or pwd.getpwuid(os.geteuid()).pw_name
    data = root / "data"
    subprocess.run(
        _as_owner(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", user, "-A", "trust", "-E", "UTF8"],
            owner,
        ),
        check=True,
        capture_output=True,
    )
    port = _free_port()
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    subprocess.run(
        _as_owner(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(root / "log"),
                "-o",
                options,
                "-w",
                "-t",
                str(START_TIMEOUT_S),
                "start",
            ],
            owner,
        ),
        check=True,
        capture_output=True,
    )
    return PgCluster(root, port, bin_dir, user), owner


def stop_cluster(cluster: PgCluster, owner: str | None) -> None:
    subprocess.run(
        _as_owner(
            [
                str(cluster.bin_dir / "pg_ctl"),
                "-D",
                str(cluster.root / "data"),
                "-m",
                "immediate",
                "stop",
            ],
            owner,
        ),
        check=False,
        capture_output=True,
    )
    shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One PostgreSQL cluster for the whole test run."""
    cluster, owner = start_cluster()
    try:
        yield cluster
    finally:
        stop_cluster(cluster, owner)


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> Iterator[str]:
    """A fresh, empty database of the session's cluster, dropped after the test."""
    url = pg_cluster.create_database()
    yield url
    pg_cluster.drop_database(url)

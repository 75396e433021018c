"""Fleets: several real `python -m server` replicas on loopback sharing one PostgreSQL database
(tests/postgres.py) and one signing key file."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from server.integrity.signer import TreeHeadSigner, create_key_file
from tests.postgres import pg_cluster, pg_url  # noqa: F401  (fixtures)
from tests.serverproc import RunningServer, launch

StartFleet = Callable[..., list[RunningServer]]


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    """The signing key every replica mounts."""
    path = tmp_path / "sth-key.pem"
    assert create_key_file(path)
    return path


@pytest.fixture
def public_key(key_file: Path) -> bytes:
    return TreeHeadSigner.from_file(key_file).public_key


@pytest.fixture
def start_fleet(
    request: pytest.FixtureRequest, key_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StartFleet]:
    """start_fleet(n, extra_args=(), artifacts=None) -> n replicas started together (they race
    to migrate the schema on purpose), each with its own data dir, all on `artifacts` (default:
    an empty dir, no models); all killed after the test."""
    url = request.getfixturevalue("pg_url")
    started: list[RunningServer] = []

    def _start(
        n: int, extra_args: tuple[str, ...] = (), artifacts: Path | None = None
    ) -> list[RunningServer]:
        args = ("--store-url", url, "--signing-key-file", str(key_file), *extra_args)
        artifacts = artifacts or tmp_path_factory.mktemp("artifacts")

        def one(_: int) -> RunningServer:
            return launch(artifacts, tmp_path_factory.mktemp("replica"), args)

        with ThreadPoolExecutor(n) as pool:
            replicas = list(pool.map(one, range(n)))
        started.extend(replicas)
        return replicas

    yield _start
    for replica in started:
        replica.kill()

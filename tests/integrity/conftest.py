"""Integrity tests run each store test against both backends: the SQLite file and PostgreSQL
(a throwaway cluster, tests/postgres.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from server.integrity.base import LogStoreBase
from server.integrity.signer import TreeHeadSigner
from server.integrity.store import LogStore
from tests.postgres import PgCluster, pg_cluster, pg_url  # noqa: F401  (fixtures)

BACKENDS = ("sqlite", "postgres")
OpenStore = Callable[..., LogStoreBase]


def store_opener(backend: str, url: str) -> OpenStore:
    """open_store(directory, **kwargs): a store whose key (and, for SQLite, file) is in
    `directory`; with PostgreSQL every store opened shares the one database `url`."""

    def _open(directory: Path, **kwargs: object) -> LogStoreBase:
        signer = TreeHeadSigner.load_or_create(directory)
        if backend == "postgres":
            from server.integrity.pgstore import PgLogStore

            return PgLogStore(url, signer, **kwargs)  # type: ignore[arg-type]
        return LogStore(directory, signer, **kwargs)  # type: ignore[arg-type]

    return _open


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def open_store(backend: str, request: pytest.FixtureRequest) -> OpenStore:
    url = request.getfixturevalue("pg_url") if backend == "postgres" else ""
    return store_opener(backend, url)


@pytest.fixture(scope="module", params=BACKENDS)
def module_store_opener(
    request: pytest.FixtureRequest,
) -> Iterator[OpenStore]:
    """As open_store, for module-scoped fixtures: one database for the module."""
    if request.param == "sqlite":
        yield store_opener("sqlite", "")
        return
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    url = cluster.create_database()
    yield store_opener("postgres", url)
    cluster.drop_database(url)

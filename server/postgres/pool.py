"""One connection pool per database URL per process, shared by every store (and tenant) on it.

Connections are autocommit: a read is one statement (stored rows never change once committed,
so reads need no snapshot), and writes open an explicit transaction. The first store to ask for
a URL opens the pool and migrates the schema; the last one to release it closes the pool.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import psycopg
import psycopg_pool

from server.errors import Unavailable
from server.postgres.schema import migrate

# Connections per process: appends waiting on a log's lock each hold one, so fewer than the
# handler threads would queue reads behind them; the server's own bound on calls still applies.
POOL_MAX = 16
CONNECT_TIMEOUT_S = 10.0


class SharedPool:
    """A refcounted psycopg pool; `connection()` maps a lost database to UNAVAILABLE."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.users = 0
        self.pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=POOL_MAX,
            kwargs={"autocommit": True},
            timeout=CONNECT_TIMEOUT_S,
            open=False,
            name="crm-store",
        )
        self.pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        with self.pool.connection() as conn:
            migrate(conn)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        try:
            with self.pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as err:
            raise Unavailable(f"the shared store is unreachable: {type(err).__name__}") from err


_pools: dict[str, SharedPool] = {}
_lock = threading.Lock()


def acquire(url: str) -> SharedPool:
    """The process's pool for `url` (opened and migrated on first use)."""
    with _lock:
        shared = _pools.get(url)
        if shared is None:
            shared = _pools[url] = SharedPool(url)
        shared.users += 1
        return shared


def release(shared: SharedPool) -> None:
    """One user fewer; the pool closes with its last user."""
    with _lock:
        shared.users -= 1
        if shared.users > 0:
            return
        _pools.pop(shared.url, None)
    shared.pool.close()


class PoolUser:
    """A store's hold on the shared pool: UNAVAILABLE once the store is closed."""

    def __init__(self, url: str, what: str) -> None:
        self._shared: SharedPool | None = acquire(url)
        self._what = what

    def connection(self) -> AbstractContextManager[psycopg.Connection]:
        shared = self._shared
        if shared is None:
            raise Unavailable(f"the {self._what} is shutting down")
        return shared.connection()

    def close(self) -> None:
        shared, self._shared = self._shared, None
        if shared is not None:
            release(shared)

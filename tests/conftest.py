"""Shared fixtures: a factory that runs the real server as a subprocess on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.serverproc import RunningServer, launch

StartServer = Callable[..., RunningServer]


@pytest.fixture
def start_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartServer]:
    """start_server(artifacts=None, data_dir=None, extra_args=()) -> RunningServer; stopped after."""
    started: list[RunningServer] = []

    def _start(
        artifacts: Path | None = None,
        data_dir: Path | None = None,
        extra_args: Sequence[str] = (),
        **kwargs: object,
    ) -> RunningServer:
        server = launch(
            artifacts or tmp_path_factory.mktemp("artifacts"),
            data_dir or tmp_path_factory.mktemp("data"),
            extra_args,
            **kwargs,  # type: ignore[arg-type]
        )
        started.append(server)
        return server

    yield _start
    for server in started:
        server.kill()

"""`--workers N`: processes share the port, one /metrics adds them up, a dead one is replaced."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from clients import CrmClient
from tests.factories import make_onnx_artifact
from tests.helpers import sample, scrape


def _loaded_at(target: str) -> str:
    """One call on a fresh connection; each worker loaded its model at its own moment."""
    with CrmClient(target) as client:
        (model,) = client.list_models()
    assert model.loaded_at is not None
    return model.loaded_at.isoformat()


def test_two_workers_share_the_port_and_metrics(start_server, tmp_path: Path) -> None:
    make_onnx_artifact(tmp_path, "churn")
    server = start_server(tmp_path, extra_args=["--workers", "2"])
    (line,) = [r for r in server.log_records() if r.get("msg") == "listening"]
    pids = {int(pid) for pid in line["workers"].values()}
    assert len(pids) == 2
    seen = {_loaded_at(server.target) for _ in range(40)}
    assert len(seen) == 2, "SO_REUSEPORT spread 40 connections over one worker only"
    samples = scrape(server.metrics_url)
    handled = sample(samples, "grpc_server_handled_total", grpc_method="ListModels", grpc_code="OK")
    assert handled == 40  # both workers' counters, added up by the supervisor's /metrics

    os.kill(min(pids), signal.SIGKILL)
    deadline = time.monotonic() + 30
    while not any(r.get("msg") == "worker died; restarting" for r in server.log_records()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # Connections that raced the kill were reset by the kernel (a client retries those); from
    # here on, while the replacement starts, the survivor alone keeps the port serving.
    assert {_loaded_at(server.target) for _ in range(20)} < seen
    deadline = time.monotonic() + 60
    while len([r for r in server.log_records() if r.get("msg") == "worker listening"]) < 3:
        assert time.monotonic() < deadline, "the dead worker was not replaced"
        time.sleep(0.1)
    assert len({_loaded_at(server.target) for _ in range(40)}) == 2
    assert server.stop() == 0


def test_workers_refuse_a_busy_port(start_server, tmp_path: Path) -> None:
    first = start_server()
    from tests.serverproc import launch

    with pytest.raises(RuntimeError, match="exited with 2"):
        launch(tmp_path, tmp_path, ["--workers", "2"], port=first.port)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two usable cores")
def test_a_lone_server_is_pinned_to_one_core_unless_told_not_to(start_server) -> None:
    usable = os.sched_getaffinity(0)
    pinned = start_server()
    assert os.sched_getaffinity(pinned.proc.pid) == {min(usable)}
    free = start_server(extra_args=["--pin-cpus", "false"])
    assert os.sched_getaffinity(free.proc.pid) == usable

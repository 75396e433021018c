"""A real Prometheus server scrapes the server's /metrics and sees the gRPC metrics."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from clients import CrmClient

PROMETHEUS = shutil.which("prometheus")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def prometheus_bin() -> str:
    if PROMETHEUS is None:
        if os.environ.get("CI"):
            pytest.fail("prometheus is not installed; .ci/run installs Debian's 'prometheus'")
        pytest.skip("Debian package 'prometheus' not installed (make system-deps installs it)")
    return PROMETHEUS


def test_prometheus_scrapes_grpc_metrics(start_server, prometheus_bin: str, tmp_path: Path) -> None:
    server = start_server()
    with CrmClient(server.target) as client:
        for _ in range(5):
            client.list_models()
    port = _free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: crm\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{server.metrics_port}']\n"
    )
    prom = subprocess.Popen(
        [prometheus_bin, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    query = 'grpc_server_handled_total{grpc_method="ListModels",grpc_code="OK"}'
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    try:
        deadline = time.monotonic() + 60
        result: list = []
        while time.monotonic() < deadline:
            assert prom.poll() is None, prom.stderr.read().decode() if prom.stderr else ""
            try:
                body = json.load(urllib.request.urlopen(url, timeout=2))
                result = body["data"]["result"]
            except OSError:
                result = []
            if result:
                break
            time.sleep(0.5)
        assert result, "Prometheus never saw grpc_server_handled_total"
        (series,) = result
        assert series["metric"]["grpc_service"] == "crm.v1.ModelService"
        assert series["metric"]["grpc_type"] == "unary"
        assert float(series["value"][1]) == 5
        up_url = f"http://127.0.0.1:{port}/api/v1/query?query=up"
        ups = json.load(urllib.request.urlopen(up_url, timeout=2))["data"]["result"]
        assert [u["value"][1] for u in ups] == ["1"]
    finally:
        prom.terminate()
        prom.wait(timeout=20)

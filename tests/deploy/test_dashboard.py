"""A real Prometheus scrapes the real server (run with the Deployment's args) while clients
call it over TLS with a token; every query of every panel of deploy/grafana/crm-serving.json
answers with data."""

from __future__ import annotations

import contextlib
import json
import math
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from clients import CrmClient, CrmError
from tests.deploy.manifests import DEPLOY, Deployed, tool
from tests.server.test_prometheus import _free_port
from tests.serving.helpers import features_of, snapshot

DASHBOARD = DEPLOY / "grafana" / "crm-serving.json"
RATE_INTERVAL = "15s"  # Grafana's $__rate_interval: several 1 s scrapes


def _queries() -> list[tuple[str, str]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(p["title"], t["expr"]) for p in panels for t in p["targets"]]


SCORE = {"churn": "predict_churn", "spend": "predict_spend", "segmentation": "assign_segments"}


def _traffic(
    deployed: Deployed, ids: list[str], features: dict[str, list], stop: threading.Event
) -> None:
    now = int(time.time())
    secret = deployed.hmac_key.read_bytes().strip()
    token = jwt.encode({"sub": "dash", "scope": "*", "iat": now, "exp": now + 900}, secret)
    target = f"localhost:{deployed.server.port}"
    with CrmClient(target, ca=deployed.ca, token=token) as client:
        while not stop.is_set():
            client.predict_churn(ids[:8])
            client.predict_spend(ids[8:12])
            client.assign_segments(ids[12:20])
            for model, rows in features.items():  # by features: onnxruntime runs, batches
                getattr(client, SCORE[model])(rows)
            with contextlib.suppress(CrmError):  # NOT_FOUND: the errors-by-code panel
                client.model_metadata("churn", 999)


@pytest.fixture
def prometheus(deployed: Deployed, tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
        "scrape_configs:\n  - job_name: crm-serving\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{deployed.server.metrics_port}']}}]\n"
    )
    prom = subprocess.Popen(
        [tool("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        prom.terminate()
        prom.wait(timeout=20)


def _answer(base: str, expr: str) -> list[dict]:
    query = urllib.parse.urlencode({"query": expr.replace("$__rate_interval", RATE_INTERVAL)})
    try:
        body = json.load(urllib.request.urlopen(f"{base}/api/v1/query?{query}", timeout=5))
    except OSError:
        return []
    assert body["status"] == "success", body
    return [r for r in body["data"]["result"] if not math.isnan(float(r["value"][1]))]


def test_every_panel_query_has_data(deployed: Deployed, prometheus: str, trained_artifacts) -> None:
    ids = [str(i) for i in snapshot(trained_artifacts)[0][:20]]
    features = {m: [features_of(trained_artifacts, m, r) for r in range(4)] for m in SCORE}
    stop = threading.Event()
    args = (deployed, ids, features, stop)
    caller = threading.Thread(target=_traffic, args=args, daemon=True)
    caller.start()
    waiting = dict(enumerate(_queries()))
    try:
        # No event tells when Prometheus has scraped enough: poll its API with a deadline.
        deadline = time.monotonic() + 90
        while waiting and time.monotonic() < deadline and caller.is_alive():
            waiting = {k: q for k, q in waiting.items() if not _answer(prometheus, q[1])}
            time.sleep(1)
    finally:
        stop.set()
        caller.join(timeout=30)
    assert caller.is_alive() is False
    assert not waiting, "panels without data:\n" + "\n".join(
        f"{t}: {e}" for t, e in waiting.values()
    )

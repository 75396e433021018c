"""The Node example (clients/node) against a real server: `npm ci` from the committed lock
file, then `node index.js`; its PredictChurn answer equals Python's and it decodes the
BadRequest with the google/rpc protos shipped under protos/."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from crm.v1 import churn_pb2, churn_pb2_grpc, common_pb2, model_pb2, model_pb2_grpc
from tests.serverproc import REPO, RunningServer

NODE_DIR = REPO / "clients" / "node"


@pytest.fixture(scope="session")
def node_client() -> list[str]:
    """The command that runs the example, its packages installed by `npm ci`."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed (.ci/run installs Debian's nodejs and npm)")
    installed = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"],
        cwd=NODE_DIR, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]
    return ["node", str(NODE_DIR / "index.js")]


def test_node_example_predicts_and_decodes_bad_request(
    node_client: list[str], oip_server: RunningServer
) -> None:
    proc = subprocess.run(
        [*node_client, "--target", oip_server.target],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    good, bad = (json.loads(line) for line in proc.stdout.splitlines())
    features = next(
        m.features
        for m in model_pb2_grpc.ModelServiceStub(oip_server.channel)
        .ListModels(model_pb2.ListModelsRequest(), timeout=5)
        .models
        if m.name == "churn"
    )
    assert all(f.HasField("typical_value") for f in features)
    values = common_pb2.FeatureValues(values={f.name: f.typical_value for f in features})
    typed = churn_pb2_grpc.ChurnServiceStub(oip_server.channel).PredictChurn(
        churn_pb2.PredictChurnRequest(customers=[common_pb2.CustomerInput(features=values)]),
        timeout=10,
    )
    assert good["ok"] and good["model"] == {"name": "churn", "version": "1"}
    assert good["probability"] == typed.predictions[0].probability
    assert bad == {
        "call": "PredictChurn",
        "ok": False,
        "code": "INVALID_ARGUMENT",
        "message": "customers[0].features.frequency: must be >= 0",
        "details": [
            {
                "type": "google.rpc.BadRequest",
                "fieldViolations": [
                    {"field": "customers[0].features.frequency", "description": "must be >= 0"}
                ],
            }
        ],
    }

"""The ecosystem's own client: tritonclient's gRPC client against a real server.

tritonclient[grpc] pins protobuf < 7 and this project needs 7, so tritonclient lives in a venv
of its own (`make oip-client-env`: .venv-oip, created by `make test` too) and runs as a
subprocess; nothing of it is imported here.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from crm.v1 import churn_pb2, churn_pb2_grpc, common_pb2
from tests.serverproc import REPO, RunningServer

CLIENT_PYTHON = REPO / ".venv-oip" / "bin" / "python"
SCRIPT = Path(__file__).with_name("triton_client.py")


@pytest.fixture(scope="session")
def triton_python() -> Path:
    """The tritonclient venv's python, made by `make oip-client-env` when missing (PyPI)."""
    made = subprocess.run(
        ["make", "-s", "oip-client-env"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    return CLIENT_PYTHON


def test_tritonclient_infers_exactly_what_predict_churn_returns(
    triton_python: Path, oip_server: RunningServer, churn_row: dict[str, float]
) -> None:
    row = list(churn_row.values())
    proc = subprocess.run(
        [str(triton_python), str(SCRIPT), oip_server.target, "churn", json.dumps(row)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout)
    typed = churn_pb2_grpc.ChurnServiceStub(oip_server.channel).PredictChurn(
        churn_pb2.PredictChurnRequest(
            customers=[
                common_pb2.CustomerInput(features=common_pb2.FeatureValues(values=churn_row))
            ]
        ),
        timeout=10,
    )
    assert seen["live"] and seen["ready"] and seen["model_ready"]
    assert seen["inputs"] == [{"name": "features", "datatype": "FP32", "shape": ["-1", "40"]}]
    assert seen["outputs"][0]["name"] == "probability"
    assert seen["versions"] == ["1"]
    assert seen["values"] == [typed.predictions[0].probability]  # exactly, not approximately
    assert seen["unknown_model"] == "StatusCode.NOT_FOUND"

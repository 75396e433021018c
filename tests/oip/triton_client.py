"""Runs in the tritonclient venv (.venv-oip: protobuf < 7), never in the project's: calls a
server with tritonclient's gRPC client and prints what it saw as one JSON object.

usage: python triton_client.py TARGET MODEL 'JSON list of feature values'
"""

from __future__ import annotations

import json
import sys

import numpy as np
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException


def main(target: str, model: str, row: list[float]) -> dict[str, object]:
    client = triton.InferenceServerClient(target)
    meta = client.get_model_metadata(model, as_json=True)
    [spec] = meta["inputs"]
    tensor = triton.InferInput(spec["name"], [1, len(row)], spec["datatype"])
    tensor.set_data_from_numpy(np.asarray([row], dtype=np.float32))
    outputs = [triton.InferRequestedOutput(o["name"]) for o in meta["outputs"]]
    result = client.infer(model, [tensor], outputs=outputs)
    first = meta["outputs"][0]["name"]
    try:
        client.infer("no-such-model", [tensor])
        unknown = "answered"
    except InferenceServerException as err:
        unknown = str(err.status())
    return {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "model_ready": client.is_model_ready(model),
        "inputs": meta["inputs"],
        "outputs": meta["outputs"],
        "versions": meta["versions"],
        "output": first,
        "values": result.as_numpy(first).astype(np.float64).tolist(),
        "unknown_model": unknown,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]))))

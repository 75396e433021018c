"""Real, small artifacts for tests: ONNX models trained on synthetic data, written as training does."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crm.artifacts import KIND_ONNX, write_artifact


def make_onnx_artifact(
    root: Path,
    name: str = "churn",
    n_features: int = 4,
    seed: int = 0,
    version: int | None = None,
    *,
    probability_output: bool = False,
) -> Path:
    """A LogisticRegression on random data exported with skl2onnx: input `features` [N, F].

    `probability_output`: also output `probability` [N, 1] (class 1's), the output
    ChurnService scores with, so PredictChurn runs on it."""
    from onnx import TensorProto, helper, numpy_helper
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, n_features)).astype(np.float32)
    y = (x @ rng.normal(size=n_features) > 0).astype(int)
    model = LogisticRegression().fit(x, y)
    onx = convert_sklearn(
        model,
        initial_types=[("features", FloatTensorType([None, n_features]))],
        options={id(model): {"zipmap": False}},
        target_opset=17,
    )
    if probability_output:
        onx.graph.initializer.extend(
            numpy_helper.from_array(np.array([v], dtype=np.int64), f"probability_{k}")
            for k, v in (("start", 1), ("end", 2), ("axis", 1))
        )
        onx.graph.node.append(
            helper.make_node(
                "Slice",
                ["probabilities", "probability_start", "probability_end", "probability_axis"],
                ["probability"],
            )
        )
        onx.graph.output.append(
            helper.make_tensor_value_info("probability", TensorProto.FLOAT, [None, 1])
        )
    features = [f"f{i}" for i in range(n_features)]
    return write_artifact(
        root,
        name,
        {"model.onnx": onx.SerializeToString()},
        {
            "kind": KIND_ONNX,
            "features": features,
            "outputs": [{"name": "probabilities", "meaning": "class probabilities"}],
            "metrics": {"validation": {"roc_auc": 1.0}, "baseline": {"roc_auc": 0.5}},
            "dataset": {"sha256": "0" * 64, "merkle_root": "0" * 64, "rows": 200},
            "test_seed": seed,
        },
        version=version,
    )


def corrupt(version_dir: Path) -> None:
    """Flip bytes of model.onnx after the manifest recorded its hash."""
    path = version_dir / "model.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def rescaled_version(version_dir: Path, scale: float) -> Path:
    """The model in `version_dir` (an output `probability`) as the next version of the same
    artifact, its probability multiplied by `scale`: same features and manifest, answers that
    tell the two versions apart."""
    import json

    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(version_dir / "model.onnx"))
    for node in model.graph.node:
        node.output[:] = ["probability_unscaled" if o == "probability" else o for o in node.output]
    model.graph.initializer.append(
        numpy_helper.from_array(np.array(scale, dtype=np.float32), "probability_scale")
    )
    model.graph.node.append(
        helper.make_node("Mul", ["probability_unscaled", "probability_scale"], ["probability"])
    )
    manifest = json.loads((version_dir / "manifest.json").read_text())
    for filled in ("files", "onnx_sha256", "created_at", "version"):
        manifest.pop(filled, None)
    root = version_dir.parent.parent
    return write_artifact(
        root, version_dir.parent.name, {"model.onnx": model.SerializeToString()}, manifest
    )

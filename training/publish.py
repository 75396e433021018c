"""From trained models to artifact directories: parity gate first, then atomic writes.

Nothing is written unless every export passed its parity check. All artifacts of one run get
the same version number (one above the highest existing among them), so a model and the
feature snapshot it was trained with share a version.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crm.artifacts import KIND_ONNX, MODEL_FILE, list_versions, write_artifact
from crm.feature_docs import MANIFEST_KEY as FEATURE_DOCS
from crm.feature_docs import from_code, to_manifest
from training.models.base import TrainedModel
from training.onnx_graph import INPUT_NAME
from training.parity import ParityError, ParityResult


@dataclass
class PendingArtifact:
    name: str
    files: dict[str, bytes]
    manifest: dict[str, Any]
    parity: ParityResult | None = None


def model_artifact(model: TrainedModel, common: dict[str, Any]) -> PendingArtifact:
    """Run the parity gate and assemble the manifest of one ONNX model."""
    parity = model.parity()
    serving = {**common.get("serving", {}), **model.serving}
    manifest = {
        **{k: v for k, v in common.items() if k != "serving"},
        "kind": KIND_ONNX,
        "features": list(model.features),
        FEATURE_DOCS: to_manifest(from_code(model.name, model.features)),
        "inputs": [
            {
                "name": INPUT_NAME,
                "dtype": "float32",
                "shape": [None, len(model.features)],
                "meaning": "raw feature values in `features` order; transforms are in the graph",
            }
        ],
        "outputs": model.outputs,
        "training": {**common.get("training", {}), **model.training},
        "metrics": model.metrics,
        "parity": parity.as_manifest(),
        "serving": serving,
    }
    return PendingArtifact(model.name, {MODEL_FILE: model.onnx_model}, manifest, parity)


def data_artifact(
    name: str, files: dict[str, bytes], manifest: dict[str, Any], common: dict[str, Any]
) -> PendingArtifact:
    keep = ("dataset", "libraries", "run")
    return PendingArtifact(name, files, {**{k: common[k] for k in keep if k in common}, **manifest})


def json_safe(value: Any) -> Any:
    """NaN and infinities (an undefined metric, e.g. AUC without positives) become null, so
    manifest.json stays valid JSON; numpy scalars become plain numbers."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def run_version(root: Path, names: Sequence[str]) -> int:
    return 1 + max((v for n in names for v in list_versions(root, n)), default=0)


def check_gate(pending: Sequence[PendingArtifact]) -> None:
    failed = [p for p in pending if p.parity is not None and not p.parity.passed]
    if failed:
        detail = "; ".join(f"{p.name}: {p.parity.failure()}" for p in failed if p.parity)
        raise ParityError(f"parity gate failed, nothing written: {detail}")


def publish(root: Path, pending: Sequence[PendingArtifact]) -> dict[str, Path]:
    """Write every pending artifact under one new version; refuses if any parity failed."""
    check_gate(pending)
    root = Path(root)
    version = run_version(root, [p.name for p in pending])
    written: dict[str, Path] = {}
    for item in pending:
        manifest = {**item.manifest, "run": {**item.manifest.get("run", {}), "version": version}}
        manifest = json_safe(manifest)
        written[item.name] = write_artifact(root, item.name, item.files, manifest, version)
    return written

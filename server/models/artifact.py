"""One artifact version loaded from disk and checked, as the registry holds and serves it."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crm.artifacts import KIND_ONNX, ArtifactError, read_manifest, verify_files
from server.metrics import ServerMetrics
from server.models.runtime import OnnxModel
from server.models.specs import parse_spec

Loader = Callable[[Path, Mapping[str, Any]], Any]
_ABSOLUTE_PATH = re.compile(r"(?<![\w.])/[^\s'\":,;()]+")


@dataclass(frozen=True)
class LoadedArtifact:
    name: str
    version: int
    kind: str
    path: Path
    manifest: Mapping[str, Any]
    loaded_at: datetime
    payload: Any  # OnnxModel for onnx_model; what the kind's loader returned otherwise
    spec: Any = None  # the typed serving spec (server.models.specs) of a model a handler serves

    @property
    def model(self) -> OnnxModel:
        if not isinstance(self.payload, OnnxModel):
            raise TypeError(f"artifact {self.name} v{self.version} is not an ONNX model")
        return self.payload


class ArtifactLoader:
    """Builds a LoadedArtifact from a version directory; `loaders` handle the kinds that are
    not ONNX models (the features snapshot, campaign tables)."""

    def __init__(
        self,
        metrics: ServerMetrics,
        ort_threads: int,
        tree_evaluator: bool,
        loaders: Mapping[str, Loader] | None,
    ) -> None:
        self.metrics = metrics
        self.ort_threads = ort_threads
        self.tree_evaluator = tree_evaluator
        self.loaders: dict[str, Loader] = dict(loaders or {})

    def load(self, name: str, version: int, version_dir: Path) -> LoadedArtifact:
        """Version `version_dir` read, every file checked against its manifest, and its payload
        built: an onnxruntime model with its typed serving spec, or what its kind's loader
        returns. ArtifactError says why a version cannot serve."""
        manifest = read_manifest(version_dir)
        verify_files(version_dir, manifest)
        kind = str(manifest["kind"])
        spec = None
        if kind == KIND_ONNX:
            payload: Any = OnnxModel(
                version_dir,
                manifest,
                self.ort_threads,
                self.metrics,
                tree_evaluator=self.tree_evaluator,
            )
            spec = parse_spec(name, manifest, payload.feature_names)
        elif kind in self.loaders:
            try:
                payload = self.loaders[kind](version_dir, manifest)
            except (OSError, ValueError, KeyError) as err:
                raise ArtifactError(f"{version_dir}: cannot load {kind}: {err}") from None
        else:
            payload = None
        return LoadedArtifact(
            name, version, kind, version_dir, manifest, datetime.now(UTC), payload, spec
        )


def public_reason(root: Path, reason: str) -> str:
    """Why a version was refused, as clients may see it: paths relative to the artifacts
    root `root`, any other absolute path hidden (the log keeps the full reason)."""
    for text in {str(root.resolve()), str(root.absolute()), str(root)}:
        reason = reason.replace(text.rstrip("/") + "/", "")
    return _ABSOLUTE_PATH.sub("<path>", reason)


def modified_stamp(version_dir: Path) -> float:
    """Latest modification time in a version dir: a refused version is retried once it changes."""
    try:
        return (
            max(p.stat().st_mtime for p in version_dir.iterdir()) if version_dir.is_dir() else 0.0
        )
    except (OSError, ValueError):
        return 0.0

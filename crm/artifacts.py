"""The artifact contract between `training` (writer) and `server` (reader).

Layout: `<root>/<name>/<version>/` holds `manifest.json` plus the files it lists. Versions are
monotonic integers; a directory appears only complete (written to a temp dir, then renamed).

manifest.json (schema_version 1):
  schema_version  1
  name, version   artifact name ("churn") and integer version
  kind            "onnx_model" | "feature_snapshot" | "product_snapshot" | "inventory_snapshot"
  created_at      ISO 8601 UTC
  files           {file name: SHA-256 hex} for every file beside the manifest
  onnx_sha256     SHA-256 hex of model.onnx (onnx_model only; equals files["model.onnx"])
  features        ordered input feature names (onnx_model)
  feature_docs    [{"name", "meaning", "unit"}] of every feature, in `features` order (onnx_model;
                  from the tables in crm/features.py, crm/line_features.py, crm/demand.py;
                  optional: readers fall back to those tables, crm/feature_docs.py)
  inputs/outputs  [{"name", "dtype", "shape", "meaning"}] of the ONNX graph
  training        window, as-of date, cutoffs, parameters
  metrics         {"validation": {...}, "baseline": {...}} on the time-based split
  dataset         lineage: {"sha256", "merkle_root", "rows", "bytes", "encoding"}
  libraries       {package: version} used to train and export
  parity          {"max_abs_diff", "tolerance", "rows", "passed"} native vs onnxruntime
  serving         what the server needs to post-process outputs (labels, thresholds, currency)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Churn risk levels when a churn manifest states none: lower bounds of MEDIUM, HIGH and
# CRITICAL. Training writes them into every churn manifest (`serving.risk_thresholds`).
DEFAULT_RISK_THRESHOLDS: tuple[float, float, float] = (0.3, 0.6, 0.8)

SCHEMA_VERSION = 1
MANIFEST_FILE = "manifest.json"
MODEL_FILE = "model.onnx"
KIND_ONNX = "onnx_model"
KIND_FEATURES = "feature_snapshot"
KIND_INVENTORY = "inventory_snapshot"
KIND_PRODUCTS = "product_snapshot"


class ArtifactError(Exception):
    """An artifact directory that is incomplete, corrupt or inconsistent with its manifest."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def utc_now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def list_versions(root: Path, name: str) -> list[int]:
    """Integer version directories of one artifact, ascending (temp dirs ignored)."""
    base = Path(root) / name
    if not base.is_dir():
        return []
    return sorted(int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit())


def list_names(root: Path) -> list[str]:
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def read_manifest(version_dir: Path) -> dict[str, Any]:
    path = Path(version_dir) / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{path}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ArtifactError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{path}: not a JSON object")
    for key in ("name", "version", "kind", "files"):
        if key not in manifest:
            raise ArtifactError(f"{path}: lacks '{key}'")
    if manifest["name"] != Path(version_dir).parent.name:
        raise ArtifactError(f"{path}: name {manifest['name']!r} differs from its directory")
    if str(manifest["version"]) != Path(version_dir).name:
        raise ArtifactError(f"{path}: version {manifest['version']!r} differs from its directory")
    return manifest


def verify_files(version_dir: Path, manifest: Mapping[str, Any]) -> None:
    """Every listed file exists and has the SHA-256 the manifest records."""
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise ArtifactError(f"{version_dir}: manifest lists no files")
    for file_name, expected in files.items():
        path = Path(version_dir) / file_name
        if not path.is_file():
            raise ArtifactError(f"{path}: listed in the manifest but missing")
        actual = sha256_file(path)
        if actual != expected:
            raise ArtifactError(f"{path}: SHA-256 {actual} does not match manifest {expected}")
    if manifest.get("kind") == KIND_ONNX and manifest.get("onnx_sha256") != files.get(MODEL_FILE):
        raise ArtifactError(f"{version_dir}: onnx_sha256 does not match files[{MODEL_FILE!r}]")


def write_artifact(
    root: Path,
    name: str,
    files: Mapping[str, bytes | Path],
    manifest: Mapping[str, Any],
    version: int | None = None,
) -> Path:
    """Write files plus a completed manifest atomically; returns the version directory.

    The version defaults to one above the highest existing one. `files`, `version`, `name`,
    `created_at`, `schema_version` and (for ONNX) `onnx_sha256` are filled in here.
    """
    base = Path(root) / name
    base.mkdir(parents=True, exist_ok=True)
    if version is None:
        existing = list_versions(root, name)
        version = (existing[-1] + 1) if existing else 1
    final = base / str(version)
    if final.exists():
        raise ArtifactError(f"{final}: already exists")
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=base))
    try:
        hashes: dict[str, str] = {}
        for file_name, content in files.items():
            target = tmp / file_name
            if isinstance(content, Path):
                shutil.copyfile(content, target)
            else:
                target.write_bytes(content)
            hashes[file_name] = sha256_file(target)
        full: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            **manifest,
            "name": name,
            "version": version,
            "created_at": manifest.get("created_at") or utc_now_iso(),
            "files": hashes,
        }
        if full.get("kind") == KIND_ONNX:
            full["onnx_sha256"] = hashes[MODEL_FILE]
        (tmp / MANIFEST_FILE).write_text(json.dumps(full, indent=2, sort_keys=True, default=str))
        for path in tmp.iterdir():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final

"""`crm-client` against a real server."""

from __future__ import annotations

import json
from pathlib import Path

from tests.factories import make_onnx_artifact
from tests.helpers import run_cli


def test_health_and_models_commands(start_server, tmp_path: Path) -> None:
    make_onnx_artifact(tmp_path, "churn")
    server = start_server(tmp_path)
    target = ["--target", server.target]
    out = run_cli(*target, "health")
    assert out.returncode == 0, out.stderr
    assert "SERVING" in out.stdout
    out = run_cli(*target, "health", "--service", "crm.v1.SpendService")
    assert out.returncode == 1
    assert "NOT_SERVING" in out.stdout
    out = run_cli(*target, "models", "--json")
    assert out.returncode == 0, out.stderr
    (model,) = json.loads(out.stdout)
    assert (model["name"], model["version"]) == ("churn", 1)
    out = run_cli(*target, "models", "--name", "churn")
    assert json.loads(out.stdout)["features"] == ["f0", "f1", "f2", "f3"]
    out = run_cli(*target, "models", "--name", "nope")
    assert out.returncode == 2
    assert "NOT_FOUND" in out.stderr
    assert "Traceback" not in out.stderr


def test_unreachable_server_is_a_clear_error() -> None:
    out = run_cli("--target", "127.0.0.1:1", "--timeout", "1", "health")
    assert out.returncode == 2
    assert "UNAVAILABLE" in out.stderr or "DEADLINE_EXCEEDED" in out.stderr
    assert "Traceback" not in out.stderr


def test_models_default_pins_and_clears(start_server, tmp_path: Path) -> None:
    make_onnx_artifact(tmp_path, "churn")
    server = start_server(tmp_path)
    make_onnx_artifact(tmp_path, "churn", seed=1)
    target = ["--target", server.target]
    assert run_cli(*target, "reload").returncode == 0
    out = run_cli(*target, "models", "default", "churn", "1")
    assert (out.returncode, out.stdout.strip()) == (0, "churn: serving version 1 (pinned)"), (
        out.stderr
    )
    (model,) = json.loads(run_cli(*target, "models", "--json").stdout)
    assert (model["version"], model["default_version"], model["default_source"]) == (1, 1, "PINNED")
    out = run_cli(*target, "models", "default", "churn", "--clear")
    assert (out.returncode, out.stdout.strip()) == (0, "churn: serving version 2 (newest)"), (
        out.stderr
    )
    out = run_cli(*target, "models", "default", "churn", "7")
    assert out.returncode == 2
    assert "NOT_FOUND" in out.stderr and "Traceback" not in out.stderr
    for wrong in (("churn",), ("churn", "1", "--clear")):
        out = run_cli(*target, "models", "default", *wrong)
        assert out.returncode == 2
        assert "VERSION" in out.stderr

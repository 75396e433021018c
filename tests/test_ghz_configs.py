"""clients/ghz: every config would run under ghz as written, and every unary RPC has one.

Each config's proto is compiled the way ghz loads it (its directory, ".", then "import-paths",
from the repo root) with protoc; the call must name a unary RPC of that file and "data" must
parse into its request type with json_format (ghz uses the same proto3 JSON mapping). Ids in
the data must exist in the default synthetic data (seed 7), so calls find real customers and
products, and feature maps must hold exactly the models' features.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import MethodDescriptor

from benchmarks.loadtest import (
    REPO_ROOT,
    ConfigError,
    ghz_config,
    load_config,
    method_path,
    parse_duration,
    request_message,
    summarize_ghz,
    with_overrides,
)
from crm import features as feat
from tests.serverproc import RunningServer

REPO = Path(__file__).resolve().parent.parent
GHZ_DIR = REPO / "clients" / "ghz"
CONFIGS = sorted(GHZ_DIR.glob("*.json")) + sorted(GHZ_DIR.glob("tls/*.json"))
REQUIRED = ("proto", "import-paths", "call", "host", "insecure", "concurrency", "connections")
OIP_INFER = "inference.GRPCInferenceService/ModelInfer"
OIP_CONFIG = GHZ_DIR / "inference.ModelInfer.churn.json"


def _config_id(path: Path) -> str:
    return str(path.relative_to(GHZ_DIR).with_suffix(""))


@functools.cache
def compiled(proto: str, import_paths: tuple[str, ...]) -> descriptor_pool.DescriptorPool:
    """A pool holding `proto` and its imports, compiled by protoc with ghz's search path."""
    import grpc_tools
    from grpc_tools import protoc

    include = str(Path(grpc_tools.__file__).parent / "_proto")  # well-known types
    search = [str(Path(proto).parent), ".", *import_paths]
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(REPO):
        out = Path(tmp, "descriptors.pb")
        args = ["protoc", *(f"-I{p}" for p in search), f"-I{include}", "--include_imports"]
        code = protoc.main([*args, f"--descriptor_set_out={out}", proto])
        assert code == 0, f"protoc could not compile {proto} with import paths {search}"
        files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    return pool


def method_of(config: dict[str, Any]) -> MethodDescriptor:
    service, method = method_path(config["call"]).strip("/").split("/")
    pool = compiled(config["proto"], tuple(config["import-paths"]))
    found = pool.FindServiceByName(service).FindMethodByName(method)
    assert found is not None, f"{service} has no method {method}"
    return found


def _walk(value: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    """Every (field name, value) in nested JSON data."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield k, v
            yield from _walk(v, k)
    elif isinstance(value, list):
        for item in value:
            yield key, item
            yield from _walk(item, key)


def test_there_are_configs() -> None:
    assert len(CONFIGS) >= 20


@pytest.mark.parametrize("path", CONFIGS, ids=_config_id)
def test_config_runs_under_ghz_as_written(path: Path) -> None:
    config = json.loads(path.read_text())
    missing = [k for k in REQUIRED if k not in config]
    assert not missing, f"missing {missing}"
    assert ("total" in config) != ("duration" in config), "give one of total or duration"
    if path.parent.name == "tls":  # the secure examples: TLS, a client certificate, a token
        assert config["insecure"] is False and config["skipTLS"] is False
        assert {"cacert", "cert", "key"} <= config.keys()
        assert config["metadata"] == {"authorization": "Bearer $CRM_TOKEN"}
    else:
        assert config["insecure"] is True
    assert 1 <= config["connections"] <= config["concurrency"]
    for p in [config["proto"], *config["import-paths"]]:
        assert (REPO / p).exists(), f"{p} does not exist (paths are relative to the repo root)"
    method = method_of(config)
    assert not method.client_streaming and not method.server_streaming, "ghz configs: unary"
    message = message_factory.GetMessageClass(method.input_type)()
    for data in config["data"] if isinstance(config["data"], list) else [config["data"]]:
        json_format.ParseDict(data, message)  # raises on an unknown field, bad enum or type


@pytest.mark.parametrize("path", CONFIGS, ids=_config_id)
def test_loadtest_encodes_the_same_request(path: Path) -> None:
    """benchmarks.loadtest (h2load fallback) sends what ghz would: same bytes as the .proto."""
    config = load_config(path)
    method = method_of(config.raw)
    expected = message_factory.GetMessageClass(method.input_type)()
    json_format.ParseDict(config.data, expected)
    sent = request_message(config.call, config.data)
    assert sent.SerializeToString(deterministic=True) == expected.SerializeToString(
        deterministic=True
    )
    assert sent.ByteSize() > 0 or config.data == {}


def _unary_rpcs() -> set[str]:
    """Every unary RPC of crm.v1, from the protos themselves, plus the health Check and the
    Open Inference Protocol's ModelInfer (its other RPCs are probes and metadata)."""
    rpcs = {"grpc.health.v1.Health/Check", OIP_INFER}
    for name in ("campaign", "churn", "integrity", "model", "segmentation", "spend"):
        pool = compiled(f"protos/crm/v1/{name}.proto", ("protos",))
        file = pool.FindFileByName(f"{name}.proto")
        rpcs |= {f"{m.containing_service.full_name}/{m.name}" for m in _unary(file)}
    return rpcs


def _unary(file: Any) -> list[MethodDescriptor]:
    return [
        m
        for service in file.services_by_name.values()
        for m in service.methods
        if not m.client_streaming and not m.server_streaming
    ]


def test_every_unary_rpc_has_a_config() -> None:
    covered = {method_path(json.loads(p.read_text())["call"]).strip("/") for p in CONFIGS}
    expected = _unary_rpcs()
    assert len(expected) >= 24
    assert expected - covered == set()


def test_vendored_health_proto_matches_grpc_health() -> None:
    from grpc_health.v1 import health_pb2

    ours = compiled("protos/grpc/health/v1/health.proto", ("protos",))
    for name, theirs in health_pb2.DESCRIPTOR.message_types_by_name.items():
        mine = ours.FindMessageTypeByName(f"grpc.health.v1.{name}")
        assert [(f.name, f.number, f.type) for f in mine.fields] == [
            (f.name, f.number, f.type) for f in theirs.fields
        ], name
    service = ours.FindServiceByName("grpc.health.v1.Health")
    theirs = health_pb2.DESCRIPTOR.services_by_name["Health"]
    assert [(m.name, m.server_streaming) for m in service.methods] == [
        (m.name, m.server_streaming) for m in theirs.methods
    ]


@pytest.mark.parametrize("name", ["status", "error_details", "code"])
def test_shipped_google_rpc_protos_match_the_python_ones(name: str) -> None:
    """protos/google/rpc (for other languages' clients) is what googleapis-common-protos, whose
    stubs the server packs its error details with, was generated from."""
    theirs = importlib.import_module(f"google.rpc.{name}_pb2").DESCRIPTOR
    ours = compiled(f"protos/google/rpc/{name}.proto", ("protos",))
    for enum in theirs.enum_types_by_name.values():
        values = ours.FindEnumTypeByName(enum.full_name).values
        assert [(v.name, v.number) for v in values] == [(v.name, v.number) for v in enum.values]
    for message in theirs.message_types_by_name.values():
        fields = ours.FindMessageTypeByName(message.full_name).fields
        assert [(f.name, f.number, f.type) for f in fields] == [
            (f.name, f.number, f.type) for f in message.fields
        ], message


@functools.cache
def _default_synthetic() -> dict[str, set[str]]:
    """Ids of the default synthetic data (seed 7, what `make train` uses), per config field."""
    from training.synthetic import SyntheticConfig, generate

    data = generate(SyntheticConfig())
    customers = set(data.lines["Customer ID"].astype(str))
    products = set(data.catalogue["product_id"].astype(str))  # what forecasts and plans know
    return {
        "customer_id": customers,
        "row_keys": customers,
        "product_id": products,
        "product_ids": products,
        "stock_code": set(data.lines["StockCode"].astype(str)),  # also POST, DOT, ... lines
    }


def test_ids_exist_in_the_default_synthetic_data() -> None:
    known = _default_synthetic()
    seen: dict[str, set[str]] = {field: set() for field in known}
    for path in CONFIGS:
        for key, value in _walk(json.loads(path.read_text())["data"]):
            if key in known and isinstance(value, str) and value:
                seen[key].add(value)
    assert seen["customer_id"] and seen["product_ids"] and seen["stock_code"]
    unknown = {field: values - known[field] for field, values in seen.items()}
    assert unknown == {field: set() for field in known}


def test_feature_values_name_exactly_the_models_features() -> None:
    from training.synthetic import CATEGORIES

    expected = feat.feature_names(list(CATEGORIES))
    checked = 0
    for path in CONFIGS:
        for key, value in _walk(json.loads(path.read_text())["data"]):
            if key == "features":
                assert sorted(value["values"]) == sorted(expected), path.name
                checked += 1
            elif key == "batch":
                assert sorted(value["feature_names"]) == sorted(expected), path.name
                rows = len(value["values"]) / len(expected)
                assert rows == int(rows) and rows == len(value.get("row_keys") or [0] * int(rows))
                checked += 1
    assert checked >= 4


def test_the_oip_config_sends_the_by_features_row_as_one_fp32_tensor() -> None:
    """ModelInfer of the churn model by name on the customer churn.PredictChurn.by_features
    sends, in the model's feature order: the same row through the other protocol."""
    from training.synthetic import CATEGORIES

    names = feat.feature_names(list(CATEGORIES))
    by_features = json.loads((GHZ_DIR / "churn.PredictChurn.by_features.json").read_text())
    row = by_features["data"]["customers"][0]["features"]["values"]
    config = json.loads(OIP_CONFIG.read_text())
    assert method_path(config["call"]) == f"/{OIP_INFER}"
    data = config["data"]
    assert (data["model_name"], data.get("model_version", "")) == ("churn", "")
    (tensor,) = data["inputs"]
    assert (tensor["name"], tensor["datatype"], tensor["shape"]) == ("features", "FP32", [1, 40])
    assert tensor["contents"]["fp32_contents"] == [row[name] for name in names]
    request = request_message(config["call"], data)
    assert list(request.inputs[0].contents.fp32_contents) == pytest.approx(
        [row[name] for name in names], rel=1e-6
    )


# -- benchmarks/loadtest.py: what it makes of a config ------------------------------------------
def test_plaintext_configs_reach_ghz_plaintext_and_tokenless() -> None:
    raw = ghz_config(with_overrides(load_config(GHZ_DIR / "health.Check.json")), "h:1")
    assert raw["insecure"] is True and raw["host"] == "h:1"
    assert not {"cacert", "cert", "key", "metadata"} & raw.keys()


def test_the_tls_example_reaches_ghz_with_absolute_paths_and_the_token() -> None:
    path = GHZ_DIR / "tls" / "churn.PredictChurn.by_id.json"
    with pytest.raises(ConfigError, match="CRM_TOKEN"):  # the placeholder is never sent
        with_overrides(load_config(path))
    config = with_overrides(load_config(path), token="tok")
    raw = ghz_config(config, "h:1")
    assert raw["insecure"] is False
    assert raw["cacert"] == str(REPO_ROOT / "certs" / "ca.pem")
    assert (raw["cert"], raw["key"]) == (str(REPO_ROOT / "certs/client.pem"),
                                         str(REPO_ROOT / "certs/client-key.pem"))  # fmt: skip
    assert raw["metadata"] == {"authorization": "Bearer tok"}
    assert config.security.tls and config.security.token == "tok"
    # The command line's files win; a plaintext config given --ca goes TLS.
    plain = with_overrides(load_config(GHZ_DIR / "health.Check.json"), ca=Path("/x/ca.pem"))
    assert ghz_config(plain, "h:1")["cacert"] == "/x/ca.pem"
    assert ghz_config(plain, "h:1")["insecure"] is False
    with pytest.raises(ConfigError):
        with_overrides(load_config(path), cert=Path("/x/c.pem"), token="tok")  # no key


def test_ghz_durations_and_call_names() -> None:
    assert [parse_duration(t) for t in ("30s", "1m30s", "500ms", "0.5s")] == [30, 90, 0.5, 0.5]
    for bad in ("30", "s", "30 seconds", "1x"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    expected = "/crm.v1.ChurnService/PredictChurn"
    assert method_path("crm.v1.ChurnService.PredictChurn") == expected
    assert method_path("crm.v1.ChurnService/PredictChurn") == expected
    with pytest.raises(ValueError):
        method_path("PredictChurn")


def test_a_ghz_report_with_any_failed_call_is_a_failure() -> None:
    """ghz's JSON report (runner/reporter.go): durations in nanoseconds, counts per status."""
    report = {
        "count": 1001, "rps": 500.5, "average": 2_000_000,
        "statusCodeDistribution": {"OK": 1000, "Unavailable": 1},
        "errorDistribution": {"rpc error: code = Unavailable": 1},
        "latencyDistribution": [{"percentage": 50, "latency": 1_500_000},
                                {"percentage": 99, "latency": 4_000_000}],
    }  # fmt: skip
    ok, summary, _ = summarize_ghz(report)
    assert not ok and "Unavailable" in summary
    ok, summary, _ = summarize_ghz({**report, "statusCodeDistribution": {"OK": 1001}})
    assert ok and "500 req/s" in summary and "p50 1.50 ms" in summary and "p99 4.00 ms" in summary
    assert not summarize_ghz({**report, "statusCodeDistribution": {}})[0]


needs_h2load = pytest.mark.skipif(shutil.which("h2load") is None, reason="h2load not installed")


def _loadtest(config: Path, server: RunningServer, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "benchmarks.loadtest", "--config", str(config)]
    command += ["--target", server.target, "--metrics-url", server.metrics_url, "--tool", "h2load"]
    return subprocess.run(
        [*command, *extra], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


@needs_h2load
def test_loadtest_runs_a_config_and_catches_failed_calls(
    start_server: Callable[..., RunningServer], tmp_path: Path
) -> None:
    """End to end on a real server without models: the health check succeeds (NOT_SERVING is an
    answer); GetModelMetadata of a model that is not loaded fails, and loadtest must say so."""
    server = start_server()
    ok = _loadtest(GHZ_DIR / "health.Check.json", server, "--duration", "1", "--json",
                   str(tmp_path / "ok.json"))  # fmt: skip
    assert ok.returncode == 0, ok.stdout + ok.stderr
    result = json.loads((tmp_path / "ok.json").read_text())
    assert result["ok"] and result["completed"] > 0 and result["server_handled"]["OK"] > 0
    assert "req/s" in ok.stdout and "p99" in ok.stdout
    failed = _loadtest(GHZ_DIR / "model.GetModelMetadata.json", server, "--total", "50")
    assert failed.returncode == 1
    assert "LOAD FAILED" in failed.stderr and "NOT_FOUND" in failed.stderr


@needs_h2load
def test_loadtest_runs_the_oip_config_on_a_served_model(
    start_server: Callable[..., RunningServer], trained_artifacts: Path, tmp_path: Path
) -> None:
    """The OIP config through benchmarks.loadtest (h2load) on a real server with the churn
    model: every call answered OK, counted by the server as ModelInfer calls."""
    server = start_server(trained_artifacts)
    out = tmp_path / "oip.json"
    run = _loadtest(OIP_CONFIG, server, "--total", "200", "--json", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(out.read_text())
    assert result["ok"] and result["completed"] == 200
    assert result["server_handled"] == {"OK": 200}

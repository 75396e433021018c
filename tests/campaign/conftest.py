"""The CampaignService on the session's trained artifacts (tests/conftest.py) in an in-process
gRPC server (real registry, real interceptor)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from crm.artifacts import KIND_FEATURES
from crm.v1 import campaign_pb2_grpc
from server.config import ServerConfig
from server.dataplane.base import Plane
from server.dataplane.inputs import InputResolver
from server.metrics import ServerMetrics
from server.models.executor import ModelExecutor
from server.models.registry import ModelRegistry
from server.models.snapshot import load_feature_snapshot
from server.services.campaign import LOADERS, CampaignServicer
from server.transport.interceptor import serving_interceptor
from server.transport.stream_slots import StreamSlots
from tests.postgres import pg_cluster, pg_url  # noqa: F401  (fixtures for the PostgreSQL backend)


@dataclass
class CampaignServer:
    """CampaignServicer on a real registry behind the server's own error interceptor."""

    artifacts: Path
    data_dir: Path
    store_url: str = ""  # a PostgreSQL database the servicer shares, or SQLite in data_dir
    servicer: CampaignServicer = field(init=False)
    channel: grpc.Channel = field(init=False)
    stub: campaign_pb2_grpc.CampaignServiceStub = field(init=False)
    _server: grpc.Server = field(init=False)

    def __post_init__(self) -> None:
        self.start()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        config = ServerConfig(
            artifacts=self.artifacts,
            data_dir=self.data_dir,
            store_url=self.store_url,
            # required with PostgreSQL; the campaign service never reads it
            signing_key_file=str(self.data_dir / "unused.pem") if self.store_url else "",
        )
        metrics = ServerMetrics()
        registry = ModelRegistry(
            config.artifacts, metrics, loaders={KIND_FEATURES: load_feature_snapshot, **LOADERS}
        )
        registry.reload()
        plane = Plane(registry, ModelExecutor(metrics), InputResolver(config.max_request_rows))
        self.servicer = CampaignServicer(config, plane)
        self._server = grpc.server(
            ThreadPoolExecutor(4),
            interceptors=[serving_interceptor(metrics, StreamSlots(2, 4, metrics.open_streams))],
        )
        campaign_pb2_grpc.add_CampaignServiceServicer_to_server(self.servicer, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        self.channel = grpc.insecure_channel(self.target)
        self.stub = campaign_pb2_grpc.CampaignServiceStub(self.channel)

    def stop(self) -> None:
        self.channel.close()
        self._server.stop(None).wait()
        self.servicer.close()

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def campaign_server(trained_artifacts: Path, tmp_path: Path) -> Iterator[CampaignServer]:
    server = CampaignServer(trained_artifacts, tmp_path / "data")
    yield server
    server.stop()

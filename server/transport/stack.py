"""One tenant's serving stack: its models, data plane, stores and servicers.

Without tenants the server has one stack over `--artifacts` and `--data-dir`. With tenants
(`--tenants`) each tenant named by a verified token gets its own, over `<artifacts>/<tenant>/`
and `<data-dir>/<tenant>/` (`server.transport.tenants`): its own registry and executor, alert
hub and live statistics (in its churn handler), integrity logs and signing key, and saved
campaigns. Nothing in one stack refers to another's (with PostgreSQL, the alert hub also reaches
the same tenant's hubs on other replicas: server.postgres.alerts).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crm.artifacts import KIND_FEATURES
from server.config import ServerConfig
from server.dataplane.base import Plane, artifact_snapshot
from server.dataplane.churn import ChurnHandler
from server.dataplane.inputs import InputResolver
from server.dataplane.segmentation import SegmentationHandler
from server.dataplane.spend import RevenueHandler, SpendHandler
from server.dataplane.tensors import TensorHandler
from server.freshness.clock import open_clock
from server.freshness.log_feed import LogFeed
from server.freshness.state import FreshFeatures, Refresher
from server.metrics import ServerMetrics
from server.models.executor import BatchingConfig, ModelExecutor
from server.models.inflight import InFlight
from server.models.registry import ModelRegistry
from server.models.snapshot import load_feature_snapshot
from server.services.campaign import LOADERS as CAMPAIGN_LOADERS
from server.services.campaign import CampaignServicer
from server.services.churn import ChurnServicer
from server.services.integrity import IntegrityServicer
from server.services.models import ModelServicer
from server.services.oip import InferenceServicer
from server.services.segmentation import SegmentationServicer
from server.services.spend import SpendServicer
from server.services.transactions import TransactionServicer
from server.stores import open_alert_hub, open_default_store, open_line_store

OIP_SERVICE = "inference.GRPCInferenceService"


def _executor(config: ServerConfig, metrics: ServerMetrics) -> ModelExecutor:
    defaults = BatchingConfig(
        max_batch_rows=config.batch_max_rows,
        preferred_batch_rows=config.batch_preferred_rows,
        max_queue_delay_us=config.batch_queue_delay_us,
    )
    per_model = {
        name: BatchingConfig(
            max_batch_rows=o.get("max_rows", defaults.max_batch_rows),
            preferred_batch_rows=o.get("preferred_rows", defaults.preferred_batch_rows),
            max_queue_delay_us=o.get("delay_us", defaults.max_queue_delay_us),
        )
        for name, o in config.batching_overrides().items()
    }
    return ModelExecutor(metrics, defaults, per_model, InFlight())


@dataclass
class ServiceStack:
    """The servicers of every crm.v1 service and the Open Inference Protocol's, by full service name, and what they run on."""

    registry: ModelRegistry
    plane: Plane
    servicers: dict[str, Any]
    endless: list[Any] = field(default_factory=list)  # closed before the drain
    closables: list[Any] = field(default_factory=list)  # closed after it
    refresher: Refresher | None = None

    @classmethod
    def build(
        cls,
        config: ServerConfig,
        metrics: ServerMetrics,
        stream_pool: ThreadPoolExecutor,
        *,
        artifacts: Path | None = None,
        data_dir: Path | None = None,
        namespace: str = "",
        ready: Callable[[], bool] = lambda: True,
    ) -> ServiceStack:
        """A stack over `artifacts` and `data_dir` (default: the configured ones); `namespace`
        (the tenant) keeps its logs and campaigns apart in a shared store (server.stores);
        `ready` is what the Open Inference Protocol's ServerReady answers (health's view)."""
        if artifacts is not None or data_dir is not None:
            config = dataclasses.replace(
                config,
                artifacts=artifacts if artifacts is not None else config.artifacts,
                data_dir=data_dir if data_dir is not None else config.data_dir,
            )
        registry = ModelRegistry(
            config.artifacts,
            metrics,
            ort_threads=config.ort_threads,
            tree_evaluator=config.tree_evaluator,
            keep_versions=config.keep_versions,
            pins=config.pinned_versions(),
            loaders={KIND_FEATURES: load_feature_snapshot, **CAMPAIGN_LOADERS},
            defaults=open_default_store(config, namespace),
        )
        fresh = FreshFeatures(
            lambda: artifact_snapshot(registry),
            open_line_store(config, namespace),
            open_clock(config.test_clock_file),
        )
        registry.add_listener(fresh.reload)  # before the handlers precompute over its rows
        plane = Plane(
            registry, _executor(config, metrics), InputResolver(config.max_request_rows), fresh
        )
        segments = SegmentationHandler(plane)
        churn = ChurnHandler(plane, open_alert_hub(config, metrics, namespace))
        spend = SpendHandler(plane)
        for handler in (segments, churn, spend):
            registry.add_listener(handler.precompute)
        fresh.add_listener(churn.on_change)
        refresher = Refresher(fresh, config.freshness_poll_seconds)
        feed = LogFeed(fresh, config.ingest_integrity_log) if config.ingest_integrity_log else None
        integrity = IntegrityServicer(config, namespace, feed)
        campaign = CampaignServicer(config, plane, namespace=namespace)
        servicers = {
            "crm.v1.ModelService": ModelServicer(registry),
            "crm.v1.SegmentationService": SegmentationServicer(segments),
            "crm.v1.ChurnService": ChurnServicer(churn, stream_pool),
            "crm.v1.SpendService": SpendServicer(spend, RevenueHandler(plane), stream_pool),
            "crm.v1.IntegrityService": integrity,
            "crm.v1.CampaignService": campaign,
            "crm.v1.TransactionService": TransactionServicer(fresh, config.max_request_rows),
            OIP_SERVICE: InferenceServicer(TensorHandler(plane), ready),
        }
        return cls(
            registry,
            plane,
            servicers,
            endless=[churn],
            closables=[refresher, fresh.store, integrity, campaign],
            refresher=refresher,
        )

    def start(self, reload_interval_seconds: float) -> None:
        """Load the models, watch for new versions, and keep by-id features fresh."""
        self.registry.reload()
        self.watch(reload_interval_seconds)

    def watch(self, reload_interval_seconds: float) -> None:
        """Start the background work of loaded models: new versions, fresh features."""
        self.registry.start_watching(reload_interval_seconds)
        if self.refresher is not None:
            self.refresher.start()

    def add_reload_listener(self, callback: Callable[[], None]) -> None:
        self.registry.add_listener(callback)

    def close_endless(self) -> None:
        """End the calls that never end on their own (alert watchers), before a drain."""
        for endless in self.endless:
            endless.close()

    def close(self) -> None:
        self.registry.close()
        for closable in self.closables:
            closable.close()

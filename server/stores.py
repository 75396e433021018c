"""The one place that picks where integrity logs, saved campaigns, ingested lines and chosen
default model versions live, from --store-url: SQLite files under the data dir (the zero-config
default), or a PostgreSQL database replicas share. Everything else sees one interface per store
(LogStoreBase, CampaignStoreBase, DefaultStoreBase). The
same setting decides whether churn alerts stay in the process or reach every replica."""

from __future__ import annotations

from pathlib import Path

from server.campaign.store import STORE_FILE, CampaignStore, CampaignStoreBase
from server.config import ServerConfig
from server.dataplane.alerts import AlertHub
from server.freshness.lines import STORE_FILE as LINES_FILE
from server.freshness.lines import LineStoreBase
from server.freshness.sqlite_lines import SqliteLineStore
from server.integrity.base import LogStoreBase
from server.integrity.signer import TreeHeadSigner
from server.integrity.store import LogStore
from server.metrics import ServerMetrics
from server.models.defaults import DEFAULTS_FILE, DefaultStore, DefaultStoreBase

INTEGRITY_DIR = "integrity"


def uses_postgres(config: ServerConfig) -> bool:
    return bool(config.store_url)


def tree_head_signer(config: ServerConfig, directory: Path) -> TreeHeadSigner:
    """The configured key file (every replica mounts it), else the data dir's own key."""
    if config.signing_key_file:
        return TreeHeadSigner.from_file(Path(config.signing_key_file))
    return TreeHeadSigner.load_or_create(directory)


def open_log_store(config: ServerConfig, namespace: str = "") -> LogStoreBase:
    """The integrity log store of one namespace (tenant) under this configuration."""
    directory = config.data_dir / INTEGRITY_DIR
    if uses_postgres(config):
        from server.integrity.pgstore import PgLogStore

        signer = TreeHeadSigner.from_file(Path(config.signing_key_file))
        return PgLogStore(
            config.store_url, signer, max_logs=config.max_integrity_logs, namespace=namespace
        )
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    return LogStore(
        directory,
        tree_head_signer(config, directory),
        max_logs=config.max_integrity_logs,
        namespace=namespace,
    )


def open_campaign_store(config: ServerConfig, namespace: str = "") -> CampaignStoreBase:
    """The saved-campaign store of one namespace (tenant) under this configuration."""
    if uses_postgres(config):
        from server.campaign.pgstore import PgCampaignStore

        return PgCampaignStore(config.store_url, namespace)
    return CampaignStore(config.data_dir / STORE_FILE, namespace)


def open_line_store(config: ServerConfig, namespace: str = "") -> LineStoreBase:
    """The ingested transaction lines of one namespace (tenant) under this configuration."""
    if uses_postgres(config):
        from server.freshness.pg_lines import PgLineStore

        return PgLineStore(config.store_url, namespace)
    return SqliteLineStore(config.data_dir / LINES_FILE, namespace)


def open_alert_hub(config: ServerConfig, metrics: ServerMetrics, namespace: str = "") -> AlertHub:
    """The churn alert hub of one namespace (tenant): the process's own, or with PostgreSQL
    one whose alerts reach the namespace's watchers on every replica (server.postgres.alerts)."""
    if uses_postgres(config):
        from server.postgres.alerts import relayed_hub

        return relayed_hub(config.store_url, config.alert_queue_size, metrics, namespace)
    return AlertHub(config.alert_queue_size)


def open_default_store(config: ServerConfig, namespace: str = "") -> DefaultStoreBase:
    """The chosen default model versions of one namespace (tenant) under this configuration."""
    if uses_postgres(config):
        from server.postgres.defaults import PgDefaultStore

        return PgDefaultStore(config.store_url, namespace)
    return DefaultStore(config.data_dir / DEFAULTS_FILE)

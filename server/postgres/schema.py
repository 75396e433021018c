"""The shared schema, created and migrated by whichever replica starts first.

Migrations run in one transaction under a transaction-scoped advisory lock, so replicas that
start together queue on it: the first applies what is missing, the others find it done.
CREATE TABLE IF NOT EXISTS alone is not enough there (two creators race on the catalog).
Every table's key starts with the tenant's namespace (integrity rows through their log's id), so
tenants sharing a database never see each other's rows.
"""

from __future__ import annotations

import psycopg

MIGRATION_LOCK = "crm-serving:schema"

# Version N is MIGRATIONS[N - 1]; append new ones, never edit an applied one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE integrity_logs (
        id bigserial PRIMARY KEY,
        namespace text NOT NULL,
        name text NOT NULL,
        tree_size bigint NOT NULL,
        root_hash bytea NOT NULL,
        timestamp_ms bigint NOT NULL,
        signature bytea NOT NULL,
        UNIQUE (namespace, name)
    );
    CREATE TABLE integrity_leaves (
        log_id bigint NOT NULL,
        idx bigint NOT NULL,
        hash bytea NOT NULL,
        data bytea NOT NULL,
        PRIMARY KEY (log_id, idx)
    );
    CREATE INDEX integrity_leaf_by_hash ON integrity_leaves (log_id, hash, idx);
    CREATE TABLE integrity_nodes (
        log_id bigint NOT NULL,
        level integer NOT NULL,
        idx bigint NOT NULL,
        hash bytea NOT NULL,
        PRIMARY KEY (log_id, level, idx)
    );
    CREATE TABLE campaigns (
        namespace text NOT NULL,
        seq bigserial NOT NULL,
        id text NOT NULL UNIQUE,
        name text NOT NULL,
        created_at timestamptz NOT NULL,
        campaign bytea NOT NULL,
        PRIMARY KEY (namespace, seq)
    );
    """,
    # 2: who watches churn alerts where, so a replica broadcasts only alerts some other replica
    # takes (server.postgres.alerts). A replica's rows outlive it until expires_at.
    """
    CREATE TABLE alert_subscriptions (
        replica text NOT NULL,
        namespace text NOT NULL,
        min_probability double precision NOT NULL,
        min_level integer NOT NULL,
        expires_at timestamptz NOT NULL,
        PRIMARY KEY (replica, namespace, min_probability, min_level)
    );
    CREATE INDEX alert_subscriptions_by_expiry ON alert_subscriptions (expires_at);
    """,
    # 3: ingested transaction lines (server.freshness), keyed per namespace by (invoice, line)
    """
    CREATE TABLE transaction_lines (
        namespace text NOT NULL,
        seq bigserial NOT NULL,
        invoice text NOT NULL,
        line_number bigint NOT NULL,
        stock_code text NOT NULL,
        description text NOT NULL,
        quantity double precision NOT NULL,
        invoice_date_ns bigint NOT NULL,
        price double precision NOT NULL,
        customer_id text NOT NULL,
        country text NOT NULL,
        category text NOT NULL,
        ingested_at_ns bigint NOT NULL,
        PRIMARY KEY (namespace, invoice, line_number)
    );
    CREATE INDEX transaction_lines_by_seq ON transaction_lines (namespace, seq);
    """,
    # 4: the version each model serves when chosen at run time (SetDefaultVersion), per tenant
    # (server.postgres.defaults); replicas read it on every reload tick.
    """
    CREATE TABLE model_defaults (
        namespace text NOT NULL,
        model text NOT NULL,
        version bigint NOT NULL,
        set_at timestamptz NOT NULL,
        PRIMARY KEY (namespace, model)
    );
    """,
)


def migrate(conn: psycopg.Connection) -> int:
    """Bring the schema to the latest version; returns it. Refuses a newer schema than this
    code knows (a replica older than the database must not write to it)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS crm_schema_version (version integer PRIMARY KEY)")
        row = conn.execute("SELECT coalesce(max(version), 0) FROM crm_schema_version").fetchone()
        current = int(row[0]) if row else 0
        if current > len(MIGRATIONS):
            raise RuntimeError(
                f"the database schema is version {current}; this server knows up to"
                f" {len(MIGRATIONS)}: upgrade the server"
            )
        for version in range(current + 1, len(MIGRATIONS) + 1):
            conn.execute(MIGRATIONS[version - 1].encode())
            conn.execute("INSERT INTO crm_schema_version (version) VALUES (%s)", (version,))
    return len(MIGRATIONS)

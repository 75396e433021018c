"""What replicas share through one PostgreSQL database: a pool per process (`pool`), the schema
every replica migrates on start (`schema`), and churn alerts fanned out by LISTEN/NOTIFY
(`alerts`, its payloads in `alert_wire`)."""

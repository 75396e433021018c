"""Load-test harness (h2load) and the Python gRPC ceiling measurement; run from the repo root."""

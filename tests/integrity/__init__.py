"""Integrity service: RFC 6962 core, log store, gRPC service, client verification and CLI."""

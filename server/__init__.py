"""crm-serving gRPC server: registry, services, interceptors and metrics."""

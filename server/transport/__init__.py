"""The transport: the gRPC server (app), its interceptors, health, reflection, the drain, stream
limits, request decoding, worker processes and CPU pinning. Nothing here scores a customer."""

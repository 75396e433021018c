"""Generated gRPC stubs for package crm.v1 (make protos). Do not edit."""

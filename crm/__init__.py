"""crm-serving shared, dependency-light code; crm.v1 holds the generated gRPC stubs."""

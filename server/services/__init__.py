"""gRPC servicers, one module per crm.v1 service."""

"""Generated stubs of the Open Inference Protocol, package inference (make protos). Do not edit."""

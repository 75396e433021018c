"""What every call goes through, one concern a module, run by one interceptor (`chain`).

In the server's order, outermost first (`server.transport.interceptor.serving_stages`):

- `errors`: an exception becomes a status (ServiceError -> its status with details, anything
  else -> INTERNAL with a generic message);
- `metrics`: gRPC started/handled/latency/messages;
- `drain`: the call counts until its status is sent, or is refused during a drain;
- `auth`: the caller is authenticated, holds the method's scope, is within its rate limits
  (or is refused, and audited), and the call runs as its principal;
- `audit`: each write or admin call is one line of the audit trail, with its outcome;
- `stream_limits`: a stream holds a slot while it holds a handler thread;
- `decoding`: request bodies are decoded here, not by grpc (bad body -> INVALID_ARGUMENT).

Scoring requests in flight (the batching executor's hint) are counted by the data plane,
not here: the transport does not know which calls reach a model.
"""

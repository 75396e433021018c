"""The data plane: one handler per served model kind, knowing nothing of gRPC.

A handler resolves its inputs to feature rows (`server.dataplane.inputs`), infers through the executor
(the only caller of onnxruntime; outputs precomputed over the snapshot answer customers given
by id), post-processes (risk levels, recommendations, segments, RFM scores) and returns plain
dataclasses. The servicers in `server.services` convert protobuf to and from these; batch
engines can call the same handlers.
"""

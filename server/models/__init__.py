"""Models as loaded artifacts: the registry (verify, parse the typed serving spec, pick a
version, hot-swap), onnxruntime sessions, the feature snapshot, and the executor, which is the
only code that runs a model (dynamic batching, per-model metrics)."""

"""Offline training: transactions -> features -> models -> ONNX artifacts with parity and lineage.

Run `python -m training --help`. Heavy libraries (scikit-learn, xgboost, onnx converters) live
here only; the server reads what this package writes and never imports it.
"""

import os

# Threads that spin while waiting made XGBoost 15x and BLAS 10x slower on 2 busy cores; both
# have to be set before numpy, xgboost or scikit-learn load their thread runtimes. XGBoost gets
# its thread count explicitly (n_jobs); BLAS calls here are small and run best on one thread.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

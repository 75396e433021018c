"""A FeatureMatrix built from a numpy matrix the way it arrives on the wire.

Building the message field by field copies every value through Python (~2.8 us a row of 40
features); parsing the packed bytes is one copy (~0.04 us a row), and the handler then sees
exactly the message a gRPC client's columnar call decodes to.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from crm.v1 import common_pb2

_VALUES_TAG = b"\x12"  # field 2 (values), wire type 2 (length-delimited, packed floats)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def feature_matrix(names: Sequence[str], values: np.ndarray) -> common_pb2.FeatureMatrix:
    """`values` [rows, len(names)] as a FeatureMatrix (float32, row-major, no row keys)."""
    head = common_pb2.FeatureMatrix(feature_names=list(names)).SerializeToString()
    raw = np.ascontiguousarray(values, dtype="<f4").tobytes()
    return common_pb2.FeatureMatrix.FromString(head + _VALUES_TAG + _varint(len(raw)) + raw)

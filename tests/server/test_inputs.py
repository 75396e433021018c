"""The resolver's value checks: exact on the edges, silent on extreme valid values."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from crm import features as feat
from crm.v1 import common_pb2
from server.dataplane.inputs import InputResolver
from server.errors import InvalidArgument

SIGNED = sorted(feat.SIGNED_FEATURES)[0]
NAMES = ("frequency", "recency_days", SIGNED)
BIG = float(np.finfo(np.float32).max)


def _resolve(*rows: dict[str, float]) -> np.ndarray:
    customers = [common_pb2.CustomerInput(features={"values": row}) for row in rows]
    return InputResolver(max_rows=100).resolve(customers, None, NAMES, None).matrix


def _fields(*rows: dict[str, float]) -> list[str]:
    with warnings.catch_warnings(), pytest.raises(InvalidArgument) as err:
        warnings.simplefilter("error")  # a value beyond float32 must not warn on its way to inf
        _resolve(*rows)
    return [v.field for v in err.value.violations]


def test_extreme_valid_values_pass_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. an overflowing sum would warn
        got = _resolve({"frequency": BIG, "recency_days": BIG, SIGNED: -BIG}, {"frequency": 0.0,
                       "recency_days": 0.0, SIGNED: BIG})  # fmt: skip
    assert got.tolist() == [[BIG, BIG, -BIG], [0.0, 0.0, BIG]]


@pytest.mark.parametrize(
    ("column", "value"),
    [("frequency", float("nan")), ("frequency", float("inf")), ("recency_days", -1.0),
     (SIGNED, float("-inf")), (SIGNED, float("inf")), (SIGNED, float("nan")),
     ("recency_days", 1e39)],  # beyond float32: infinite once converted
)  # fmt: skip
def test_each_bad_value_is_named(column: str, value: float) -> None:
    good = {"frequency": 1.0, "recency_days": 2.0, SIGNED: -3.0}
    assert _fields(good, {**good, column: value}) == [f"customers[1].features.{column}"]


def test_negative_signed_feature_is_valid() -> None:
    assert _resolve({"frequency": 1.0, "recency_days": 2.0, SIGNED: -1e30})[0, 2] == np.float32(
        -1e30
    )

"""Our scipy BG/NBD and Gamma-Gamma against `lifetimes` (an established implementation) on the
apparel export: same inputs, the same fitted parameters and predictions; and the serving
graph's BG/NBD term against the numpy one.

The inputs (x, t_x, T in days, mean spend of repeat purchase days) are built here with pandas:
`lifetimes.utils.summary_data_from_transaction_data` does not work with pandas 3, but its
fitters do.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter, GammaGammaFitter
from onnx import TensorProto, helper

from tests.training.test_shapes import APPAREL
from training.btyd import BetaGeo, fit_bgnbd, fit_gamma_gamma
from training.onnx_graph import OPSET, GraphBuilder

END = pd.Timestamp("2008-12-31")


@pytest.fixture(scope="module")
def summary() -> pd.DataFrame:
    lines = pd.read_csv(APPAREL, parse_dates=["InvoiceDate"])
    lines = lines.loc[lines["InvoiceDate"] < END]
    daily = (
        lines.assign(day=lines["InvoiceDate"].dt.normalize())
        .groupby(["Customer ID", "day"])["Price"]
        .sum()
        .reset_index()
    )
    by = daily.groupby("Customer ID")["day"]
    first = by.transform("min")
    out = pd.DataFrame(
        {
            "x": by.size() - 1,
            "t_x": (by.max() - by.min()).dt.days,
            "T": (END - by.min()).dt.days,
        }
    ).astype(float)
    repeat = daily.loc[daily["day"] > first].groupby("Customer ID")["Price"].mean()
    out["m"] = repeat.reindex(out.index).fillna(0.0)
    assert len(out) == 600 and (out["x"] > 0).sum() > 300
    return out


def test_bgnbd_matches_lifetimes(summary: pd.DataFrame) -> None:
    x, t_x, big_t = (summary[c].to_numpy() for c in ("x", "t_x", "T"))
    reference = BetaGeoFitter().fit(summary["x"], summary["t_x"], summary["T"])
    ours = fit_bgnbd(x, t_x, big_t)
    for name, value in ours.as_dict().items():
        assert value == pytest.approx(reference.params_[name], rel=1e-3), name
    for t in (30.0, 92.0):
        expected = reference.conditional_expected_number_of_purchases_up_to_time(
            t, summary["x"], summary["t_x"], summary["T"]
        )
        np.testing.assert_allclose(
            ours.expected_purchases(t, x, t_x, big_t), expected, rtol=1e-3, atol=1e-6
        )
    alive = reference.conditional_probability_alive(summary["x"], summary["t_x"], summary["T"])
    np.testing.assert_allclose(ours.p_alive(x, t_x, big_t), alive, rtol=1e-3, atol=1e-6)
    # P(no purchase in t) against lifetimes' own P(X(t) = 0) for a customer alive or not:
    # 1 - P(alive) + P(alive) * P(no Poisson event in t | alive)
    quiet = (
        (reference.params_["alpha"] + big_t) / (reference.params_["alpha"] + big_t + 92.0)
    ) ** (reference.params_["r"] + x)
    np.testing.assert_allclose(
        ours.p_no_purchase(92.0, x, t_x, big_t), 1 - alive + alive * quiet, rtol=1e-3, atol=1e-6
    )


def test_gamma_gamma_matches_lifetimes(summary: pd.DataFrame) -> None:
    repeat = summary.loc[(summary["x"] > 0) & (summary["m"] > 0)]
    reference = GammaGammaFitter().fit(repeat["x"], repeat["m"])
    ours = fit_gamma_gamma(summary["x"].to_numpy(), summary["m"].to_numpy())
    for name, value in ours.as_dict().items():
        assert value == pytest.approx(reference.params_[name], rel=1e-3), name
    expected = reference.conditional_expected_average_profit(repeat["x"], repeat["m"])
    np.testing.assert_allclose(
        ours.expected_spend(repeat["x"].to_numpy(), repeat["m"].to_numpy()), expected, rtol=1e-4
    )


def test_the_graph_computes_bgnbd_like_numpy_on_edge_rows() -> None:
    """The serving graph's BG/NBD term against BetaGeo on one-time buyers, heavy repeat buyers,
    a last purchase at T and long-lapsed customers (float32 graph vs float64 numpy)."""
    model = BetaGeo(r=0.4967, alpha=114.52, a=0.7559, b=4.3134)
    frequency = np.array([1, 1, 2, 2, 5, 20, 54, 3, 1], dtype=np.float32)
    span = np.array([0, 0, 1, 300, 1400, 1456, 2000, 10, 0], dtype=np.float32)
    tenure = np.array([0.5, 2000, 1, 300, 2100, 1459, 2000, 3000, 7], dtype=np.float32)
    x = np.column_stack([frequency, span, tenure])
    g = GraphBuilder("t")
    out = g.bgnbd_no_purchase("x", [0, 1, 2], (model.r, model.alpha, model.a, model.b), 92.0)
    g.op("Identity", [out], "p")
    graph = helper.make_graph(
        g.nodes,
        "bgnbd",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, [None])],
        g.initializers,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(proto, full_check=True)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"x": x})
    x64 = x.astype(np.float64)
    expected = model.p_no_purchase(
        92.0, np.maximum(x64[:, 0] - 1, 0), x64[:, 1], np.maximum(x64[:, 2], x64[:, 1])
    )
    assert ((expected > 0) & (expected <= 1)).all()
    np.testing.assert_allclose(got, expected, atol=2e-6)

"""`crm-batch --revenue-output`: every line of a lines input valued by the server's revenue
handler, equal to a real server's PredictInvoiceRevenue for the same invoice; lines the server
would refuse carry their problem instead of a number."""

from __future__ import annotations

from datetime import UTC

import numpy as np
import pandas as pd

from clients import CrmClient
from clients.scoring import Line
from tests.batch.runner import run_batch

N_CUSTOMERS = 25


def _line(row: pd.Series) -> Line:
    return Line(
        str(row["Invoice"]), str(row["StockCode"]), float(row["Quantity"]), float(row["Price"]),
        pd.Timestamp(row["InvoiceDate"]).to_pydatetime().replace(tzinfo=UTC),
        customer_id=str(row["Customer ID"]), category=str(row["Category"]),
    )  # fmt: skip


def test_lines_valued_like_the_server(served, trained_artifacts, lines_frame, tmp_path) -> None:
    ids = lines_frame["Customer ID"].astype(str)
    chosen = set(ids.drop_duplicates().head(N_CUSTOMERS))
    lines = lines_frame[ids.isin(chosen)].reset_index(drop=True)
    lines.loc[0, "Quantity"] = -abs(lines.loc[0, "Quantity"])  # a return: not a sale
    lines.loc[1, "Price"] = 0.0  # a free line: not valued
    path = tmp_path / "lines.csv"
    lines.to_csv(path, index=False)
    as_of = (pd.Timestamp(lines["InvoiceDate"].max()) + pd.Timedelta(days=1)).isoformat()
    out = tmp_path / "revenue.parquet"
    run = run_batch(
        path, tmp_path / "customers.parquet", trained_artifacts,
        "--as-of", as_of, "--workers", "1", "--revenue-output", str(out),
    )  # fmt: skip
    assert run.code == 0, run.stderr
    sale = (lines["Quantity"] > 0) & (lines["Price"] > 0)  # returns in the data are not valued
    assert f"revenue: {len(lines):,} lines, {int((~sale).sum()):,} not valued" in run.stderr
    got = pd.read_parquet(out)
    assert got["line"].tolist() == list(range(1, len(lines) + 1))  # input order, every line
    assert got.loc[0, "error"] == "Quantity: must be a finite number > 0"
    assert got.loc[1, "error"] == "Price: must be a finite number > 0"
    assert got.loc[:1, "expected_net_revenue"].isna().all()
    assert got["error"].notna().tolist() == (~sale).tolist()
    valued = got[got["error"].isna()]

    # the server, one call per invoice (an invoice's lines meet in one call, as in a partition)
    sent = lines[sale]
    expected = np.zeros(len(lines))
    gross = np.zeros(len(lines))
    with CrmClient(served.target) as client:
        for _, invoice in sent.groupby("Invoice", sort=False):
            answer = client.predict_invoice_revenue([_line(r) for _, r in invoice.iterrows()])
            assert answer.model.name == "revenue"
            for position, result in zip(invoice.index, answer.lines, strict=True):
                expected[position] = result.expected_net_revenue
                gross[position] = result.gross_revenue
    rows = valued.index.to_numpy()
    np.testing.assert_array_equal(valued["gross_revenue"].to_numpy(), gross[rows])
    # onnxruntime's last float32 place depends on a row's position in its call (batch.score)
    np.testing.assert_allclose(
        valued["expected_net_revenue"].to_numpy(), expected[rows], rtol=1e-6, atol=0
    )
    assert (valued["expected_net_revenue"] > 0).all()


def test_revenue_output_needs_lines(trained_artifacts, feature_rows, tmp_path) -> None:
    feature_rows.head(5).to_csv(tmp_path / "features.csv", index=False)
    out = tmp_path / "revenue.parquet"
    run = run_batch(
        tmp_path / "features.csv", tmp_path / "o.parquet", trained_artifacts,
        "--revenue-output", str(out),
    )  # fmt: skip
    assert run.code == 2
    assert "--revenue-output needs an input of transaction lines" in run.stderr
    assert not out.exists() and not (tmp_path / "o.parquet").exists()

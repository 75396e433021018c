"""Expected net revenue of every line of a lines input (`crm-batch --revenue-output`).

The server's revenue handler values each spilled partition through its frame entry. An
invoice's lines share a customer, so they share a partition and meet in one call, as the
model needs (a line's features include its invoice's line count and gross). A line the
server would refuse (a return, a zero price, a bad date) gets its problem in `error`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from batch.lines import SALE_RULES, parse_partition
from batch.schema import ERROR
from crm import features as feat
from server.dataplane.spend import RevenueHandler
from server.models.artifact import LoadedArtifact

LINE = "line"
GROSS, EXPECTED = "gross_revenue", "expected_net_revenue"


def revenue_schema(artifact: LoadedArtifact) -> pa.Schema:
    """One row per input line; the valued column names its model and version."""
    meta = {"crm.model": artifact.name, "crm.model_version": str(artifact.version)}
    return pa.schema(
        [
            pa.field(LINE, pa.int64()),  # the line's 1-based data row in the input
            pa.field(feat.INVOICE, pa.string()),
            pa.field(feat.STOCK_CODE, pa.string()),
            pa.field(feat.CUSTOMER_ID, pa.string()),
            pa.field(ERROR, pa.string()),
            pa.field(GROSS, pa.float64()),
            pa.field(EXPECTED, pa.float64(), metadata=meta),
        ],
        metadata={b"crm.currency": artifact.spec.currency.encode()},
    )


def partition_revenue(handler: RevenueHandler, path: Path, schema: pa.Schema) -> pa.Table:
    """Every line of one spilled partition, valued or with its problem, in line order."""
    parsed = parse_partition(path, SALE_RULES)
    frame, errors = parsed.frame, parsed.errors
    good = np.array([e is None for e in errors], dtype=bool)
    n = len(errors)
    gross = np.zeros(n)
    expected = np.zeros(n)
    if good.any():
        valued = handler.predict_frame(frame[good].reset_index(drop=True))
        gross[good] = valued.gross
        expected[good] = valued.expected_net
    order = np.argsort(parsed.numbers, kind="stable")
    table = pa.table(
        {
            LINE: pa.array(parsed.numbers),
            feat.INVOICE: pa.array(frame[feat.INVOICE].to_numpy(dtype=object), pa.string()),
            feat.STOCK_CODE: pa.array(frame[feat.STOCK_CODE].to_numpy(dtype=object), pa.string()),
            feat.CUSTOMER_ID: pa.array(frame[feat.CUSTOMER_ID].to_numpy(dtype=object), pa.string()),
            ERROR: pa.array(errors, pa.string()),
            GROSS: pa.array(gross, mask=~good),
            EXPECTED: pa.array(expected, mask=~good),
        },
        schema=schema,
    )
    return table.take(pa.array(order))

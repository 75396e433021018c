"""The customer history a feature snapshot was computed from, shipped beside it so the server
can age the features and add new lines (`history.npz` in the `features` artifact).

Training writes the cleaned lines before its as-of time; the server reads them back as a
crm.features line frame and recomputes features with the same code at any later as-of time.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from crm import features as feat

HISTORY_FILE = "history.npz"
# Columns kept (the ones features read, plus Country for the export); Description is not.
_TEXT = (feat.INVOICE, feat.STOCK_CODE, feat.CUSTOMER_ID, feat.COUNTRY, feat.CATEGORY)
_NUMBERS = (feat.QUANTITY, feat.PRICE)
_KEYS = {
    feat.INVOICE: "invoice",
    feat.STOCK_CODE: "stock_code",
    feat.CUSTOMER_ID: "customer_id",
    feat.COUNTRY: "country",
    feat.CATEGORY: "category",
    feat.QUANTITY: "quantity",
    feat.PRICE: "price",
}
INVOICE_SECONDS = "invoice_date_s"


def history_arrays(lines: pd.DataFrame) -> dict[str, np.ndarray]:
    """A lines frame (crm.features columns, e.g. prepared lines) as the arrays of HISTORY_FILE."""
    out: dict[str, np.ndarray] = {}
    for col in _TEXT:
        values = lines[col] if col in lines.columns else pd.Series([""] * len(lines))
        out[_KEYS[col]] = np.asarray(feat.text_values(values), dtype=str)
    for col in _NUMBERS:
        out[_KEYS[col]] = lines[col].to_numpy(dtype=np.float64)
    dates = pd.to_datetime(lines[feat.INVOICE_DATE]).to_numpy(dtype="datetime64[s]")
    out[INVOICE_SECONDS] = dates.astype(np.int64)
    return out


def history_frame(arrays: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """HISTORY_FILE's arrays back as a crm.features lines frame (Description empty)."""
    n = len(arrays[INVOICE_SECONDS])
    frame = pd.DataFrame({col: arrays[_KEYS[col]].astype(object) for col in _TEXT})
    for col in _NUMBERS:
        frame[col] = np.asarray(arrays[_KEYS[col]], dtype=np.float64)
    frame[feat.INVOICE_DATE] = pd.to_datetime(
        np.asarray(arrays[INVOICE_SECONDS], dtype=np.int64).astype("datetime64[s]")
    )
    frame[feat.DESCRIPTION] = np.full(n, "", dtype=object)
    return frame[list(feat.LINE_COLUMNS)]

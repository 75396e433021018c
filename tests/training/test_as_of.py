"""--as-of: nothing at or after it is used; --models: only those models (plus their snapshot)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from crm.artifacts import list_names, read_manifest
from training.cleaning import clean
from training.pipeline import RunConfig, run
from training.synthetic import SyntheticConfig, generate


def test_as_of_truncates_the_data_and_models_subset(tmp_path: Path) -> None:
    as_of = pd.Timestamp("2024-03-01")
    config = RunConfig(
        out=tmp_path,
        synthetic=SyntheticConfig(customers=400, days=730, seed=9),
        as_of=as_of,
        models=("churn",),
    )
    result = run(config, lambda _line: None)
    assert list_names(tmp_path) == ["churn", "features"]
    churn = read_manifest(tmp_path / "churn" / "1")
    assert churn["training"]["as_of"] == as_of.isoformat()
    assert churn["training"]["window"]["end"] == as_of.isoformat()
    validation = pd.Timestamp(churn["training"]["cutoffs"]["validation"])
    assert validation + pd.Timedelta(days=90) == as_of
    snapshot = read_manifest(tmp_path / "features" / "1")
    assert snapshot["as_of"] == as_of.isoformat()
    with np.load(tmp_path / "features" / "1" / "snapshot.npz") as data:
        names = [str(n) for n in data["feature_names"]]
        recency = data["values"][:, names.index("recency_days")]
        customers = {str(c) for c in data["customer_ids"]}
    assert (recency > 0).all()  # every purchase counted is strictly before as_of
    lines, _ = clean(generate(config.synthetic).lines.astype({"Customer ID": str}))
    before = lines.loc[pd.to_datetime(lines["InvoiceDate"]) < as_of, "Customer ID"]
    after = lines.loc[pd.to_datetime(lines["InvoiceDate"]) >= as_of, "Customer ID"]
    assert customers == set(before)
    assert set(after) - set(before)  # customers who only came later exist, and are absent
    assert result.dataset["rows"] == len(generate(config.synthetic).lines)  # lineage: whole file

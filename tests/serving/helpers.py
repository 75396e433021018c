"""Reading the trained artifacts the serving tests score against, and the transaction lines
their feature snapshot was computed from (the synthetic data regenerated from its seed)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import grpc
import numpy as np
import pandas as pd

from clients.scoring import Line
from crm.v1 import churn_pb2, churn_pb2_grpc, common_pb2
from server.models.snapshot import SNAPSHOT_FILE


def latest(artifacts: Path, name: str) -> tuple[Path, dict]:
    """The newest version directory of artifact `name` and its manifest."""
    version_dir = max((artifacts / name).iterdir(), key=lambda p: int(p.name))
    return version_dir, json.loads((version_dir / "manifest.json").read_text())


def snapshot(artifacts: Path) -> tuple[np.ndarray, np.ndarray, list[str], dict]:
    """The feature snapshot: customer ids, values [N, F], feature names, manifest."""
    version_dir, manifest = latest(artifacts, "features")
    with np.load(version_dir / SNAPSHOT_FILE) as data:
        ids, values = data["customer_ids"].astype(str), data["values"]
        names = [str(n) for n in data["feature_names"]]
    return ids, values, names, manifest


def snapshot_as_of(manifest: dict) -> datetime:
    """The time the snapshot's features were computed as of, as an aware UTC datetime."""
    return pd.Timestamp(manifest["as_of"]).to_pydatetime().replace(tzinfo=UTC)


def training_day_clock(artifacts: Path, directory: Path) -> list[str]:
    """Server flags pinning its test clock to the training day: the day ends at the features
    artifact's as-of, so by-id answers are the training snapshot's rows (tests comparing
    against the snapshot; tests/serving/test_freshness.py moves the clock)."""
    clock = directory / "clock"
    as_of = pd.Timestamp(latest(artifacts, "features")[1]["as_of"])
    clock.write_text((as_of - pd.Timedelta(seconds=1)).isoformat())
    return ["--test-clock-file", str(clock)]


def model_features(artifacts: Path, name: str) -> list[str]:
    return latest(artifacts, name)[1]["features"]


def features_of(artifacts: Path, model: str, row: int) -> dict[str, float]:
    _, values, names, _ = snapshot(artifacts)
    wanted = model_features(artifacts, model)
    return {n: float(values[row, names.index(n)]) for n in wanted}


def snapshot_batch(artifacts: Path, model: str, rows: int) -> common_pb2.FeatureMatrix:
    """The snapshot's first `rows` customers as a columnar batch in `model`'s feature order."""
    _, values, names, _ = snapshot(artifacts)
    wanted = model_features(artifacts, model)
    matrix = values[:rows][:, [names.index(n) for n in wanted]]
    return common_pb2.FeatureMatrix(feature_names=wanted, values=matrix.reshape(-1).tolist())


def cleaned_lines(synthetic_args: list[str], out_dir: Path) -> pd.DataFrame:
    """The transaction lines `python -m training SYNTHETIC_ARGS` trained on: the synthetic data
    regenerated from its seed, loaded and cleaned by training's own functions."""
    from training.cleaning import clean
    from training.loader import load_transactions
    from training.synthetic import SyntheticConfig, generate, write_csv

    args = dict(zip(synthetic_args[1::2], synthetic_args[2::2], strict=True))
    config = SyntheticConfig(
        customers=int(args["--customers"]), days=int(args["--days"]), seed=int(args["--seed"])
    )
    path = out_dir / "synthetic.csv"
    write_csv(generate(config), str(path))
    cleaned, _ = clean(load_transactions(path).lines)
    return cleaned


def customer_lines(cleaned: pd.DataFrame, customer_id: str) -> list[Line]:
    """One customer's cleaned lines, as a client sends them (TransactionHistory)."""
    mine = cleaned[cleaned["Customer ID"].astype(str) == customer_id]
    return [
        Line(
            str(r.Invoice), str(r.StockCode), float(r.Quantity), float(r.Price),
            pd.Timestamp(r.InvoiceDate).to_pydatetime().replace(tzinfo=UTC),
            customer_id=customer_id, category=str(r.Category),
        )
        for r in mine.itertuples()
    ]  # fmt: skip


class AlertWatch:
    """An open WatchChurnAlerts on every risk level of `channel`, read in the background,
    known to be subscribed: the server's churn score of a snapshot customer arrived on it."""

    def __init__(self, channel: grpc.Channel, artifacts: Path, timeout: float = 120) -> None:
        stub = churn_pb2_grpc.ChurnServiceStub(channel)
        self.stream = stub.WatchChurnAlerts(
            churn_pb2.WatchChurnAlertsRequest(min_risk_level=churn_pb2.RISK_LEVEL_LOW),
            timeout=timeout,
        )
        self.alerts: list[churn_pb2.ChurnAlert] = []
        self.arrived = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        known = str(snapshot(artifacts)[0][0])
        warm_up = churn_pb2.PredictChurnRequest(customers=[{"customer_id": known}])
        deadline = time.monotonic() + 20
        while not self.alerts:
            assert time.monotonic() < deadline, "the watch never received the warm-up alert"
            stub.PredictChurn(warm_up, timeout=10)
            self.arrived.wait(0.2)

    def _read(self) -> None:
        try:
            for message in self.stream:
                self.alerts.append(message.alert)
                self.arrived.set()
        except grpc.RpcError:
            self.arrived.set()

    def wait_for(
        self, test: Callable[[churn_pb2.ChurnAlert], bool], timeout: float = 30
    ) -> list[churn_pb2.ChurnAlert]:
        """The alerts passing `test`, once there is one (waits on arrivals, up to `timeout`)."""
        deadline = time.monotonic() + timeout
        while True:
            hits = [a for a in list(self.alerts) if test(a)]
            if hits:
                return hits
            assert time.monotonic() < deadline, "no such alert arrived"
            self.arrived.clear()
            self.arrived.wait(0.5)

    def close(self) -> None:
        self.stream.cancel()

"""Bulk streaming, live alerts with a slow subscriber, and the score CLI, on a real server."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pandas as pd

from crm.v1 import churn_pb2, churn_pb2_grpc, common_pb2
from tests.serving.helpers import model_features, snapshot


def test_stream_of_50k_customers_is_complete_and_in_order(served, trained_artifacts: Path) -> None:
    ids, values, names, _ = snapshot(trained_artifacts)
    churn_names = model_features(trained_artifacts, "churn")
    base = values[:, [names.index(n) for n in churn_names]]
    total, batch_rows = 50_000, 1_000
    picks = np.arange(total) % len(base)
    stub = churn_pb2_grpc.ChurnServiceStub(served.channel)
    expected = np.asarray(
        stub.PredictChurn(
            churn_pb2.PredictChurnRequest(
                batch=common_pb2.FeatureMatrix(
                    feature_names=churn_names, values=base.reshape(-1).tolist()
                )
            ),
            timeout=30,
        ).columns.probabilities
    )

    def requests():
        for seq, start in enumerate(range(0, total, batch_rows)):
            rows = base[picks[start : start + batch_rows]]
            yield churn_pb2.StreamPredictChurnRequest(
                sequence=seq,
                batch=common_pb2.FeatureMatrix(
                    feature_names=churn_names, values=rows.reshape(-1).tolist()
                ),
            )

    got: list[float] = []
    sequences: list[int] = []
    for response in stub.StreamPredictChurn(requests(), timeout=120):
        assert response.model.name == "churn"
        sequences.append(response.sequence)
        got.extend(response.columns.probabilities)
    assert sequences == list(range(total // batch_rows))
    assert len(got) == total
    np.testing.assert_allclose(got, expected[picks], atol=1e-6)
    # the row form streams too, by id, with per-row markers kept in place
    small = [
        churn_pb2.StreamPredictChurnRequest(
            sequence=7, customers=[{"customer_id": ids[0]}, {"customer_id": "nobody"}]
        )
    ]
    (response,) = list(stub.StreamPredictChurn(iter(small), timeout=10))
    assert response.sequence == 7
    assert [p.HasField("error") for p in response.predictions] == [False, True]


def _reader(stream, sink: list, first: threading.Event, resume: threading.Event | None) -> None:
    """Collect alerts; after the first one, stop reading until `resume` (a slow consumer)."""
    try:
        for message in stream:
            sink.append(message)
            if not first.is_set():
                first.set()
                if resume is not None:
                    resume.wait(60)
    except grpc.RpcError:
        pass  # cancelled at the end of the test


def test_alerts_reach_two_subscribers_and_a_slow_one_drops_oldest(
    served, trained_artifacts
) -> None:
    ids, _, _, _ = snapshot(trained_artifacts)
    stub = churn_pb2_grpc.ChurnServiceStub(served.channel)
    # A truly slow consumer: a tiny HTTP/2 receive window, so the server's sends block once it
    # stops reading (a client that merely sleeps would have everything buffered for it).
    slow_channel = grpc.insecure_channel(
        served.target, options=[("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 1024)]
    )
    everything = churn_pb2.WatchChurnAlertsRequest(min_risk_level=churn_pb2.RISK_LEVEL_LOW)
    fast, slow = [], []
    fast_first, slow_first = threading.Event(), threading.Event()
    published = threading.Event()
    streams = [
        stub.WatchChurnAlerts(everything, timeout=90),
        churn_pb2_grpc.ChurnServiceStub(slow_channel).WatchChurnAlerts(everything, timeout=90),
    ]
    readers = [
        threading.Thread(target=_reader, args=(streams[0], fast, fast_first, None)),
        threading.Thread(target=_reader, args=(streams[1], slow, slow_first, published)),
    ]
    for r in readers:
        r.start()
    deadline = time.monotonic() + 20
    while not (fast_first.is_set() and slow_first.is_set()):  # both subscribed
        assert time.monotonic() < deadline, "subscribers never received the warm-up alert"
        stub.PredictChurn(
            churn_pb2.PredictChurnRequest(customers=[{"customer_id": ids[0]}]), timeout=5
        )
        time.sleep(0.1)
    total = 1000
    keys = [f"main-{i}" for i in range(total)]

    def fast_main() -> int:
        return sum(m.alert.request_key.startswith("main-") for m in fast)

    for chunk in range(0, total, 10):  # the slow subscriber is asleep, then blocked, throughout
        customers = [
            common_pb2.CustomerInput(customer_id=ids[i % len(ids)], request_key=keys[i])
            for i in range(chunk, chunk + 10)
        ]
        # A publish that waited for the slow subscriber would blow this 2 s deadline.
        stub.PredictChurn(churn_pb2.PredictChurnRequest(customers=customers), timeout=2)
        deadline = time.monotonic() + 10
        while fast_main() < chunk + 10:  # pace on the fast subscriber, which never drops
            assert time.monotonic() < deadline, "the fast subscriber stopped receiving"
            time.sleep(0.001)
    published.set()  # the slow subscriber reads again and drains what its queue kept
    started = time.monotonic()
    while not (slow and slow[-1].alert.request_key == keys[-1]) and time.monotonic() < started + 20:
        time.sleep(0.1)
    for s in streams:
        s.cancel()
    for r in readers:
        r.join(timeout=10)
    slow_channel.close()
    assert [m.alert.request_key for m in fast if m.alert.request_key.startswith("main-")] == keys
    assert all(m.alert.model.name == "churn" for m in fast)
    slow_idx = [
        int(m.alert.request_key[5:]) for m in slow if m.alert.request_key.startswith("main-")
    ]
    assert slow_idx == sorted(slow_idx), "alerts reordered"
    assert slow_idx and slow_idx[-1] == total - 1, "the newest alert must survive"
    assert len(slow_idx) < total / 2, "the slow subscriber was never slowed down"
    dropped = slow[-1].dropped_total
    assert dropped > 0
    assert len(slow_idx) + dropped >= total  # every alert was delivered or counted as dropped


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clients.cli", *args], capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def test_score_cli_on_csv_files(served, trained_artifacts: Path, tmp_path: Path) -> None:
    ids, values, names, _ = snapshot(trained_artifacts)
    churn_names = model_features(trained_artifacts, "churn")
    frame = pd.DataFrame(values[:, [names.index(n) for n in churn_names]], columns=churn_names)
    frame.insert(0, "customer_id", ids)
    frame = pd.concat([frame] * 5, ignore_index=True)  # several stream messages
    features_csv, out_csv = tmp_path / "features.csv", tmp_path / "out.csv"
    frame.to_csv(features_csv, index=False)
    target = ["--target", served.target]
    run = _cli(*target, "score", "churn", "--input", str(features_csv), "--output", str(out_csv),
               "--batch-rows", "700")  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert f"scored {len(frame)}/{len(frame)}" in run.stderr
    out = pd.read_csv(out_csv, dtype={"customer_id": str})
    assert len(out) == len(frame)
    assert out["row"].tolist() == list(range(len(frame)))
    assert out["customer_id"].tolist() == frame["customer_id"].tolist()
    assert out["probability"].between(0, 1).all()
    by_id_csv = tmp_path / "ids.csv"
    frame[["customer_id"]].head(300).to_csv(by_id_csv, index=False)
    for kind in ("churn", "spend", "segments"):
        out_kind = tmp_path / f"{kind}.csv"
        run = _cli(
            *target, "score", kind, "--input", str(by_id_csv), "--output", str(out_kind), "--quiet"
        )
        assert run.returncode == 0, run.stderr
        result = pd.read_csv(out_kind, dtype={"customer_id": str})
        assert result["customer_id"].tolist() == frame["customer_id"].head(300).tolist()
    np.testing.assert_allclose(
        pd.read_csv(tmp_path / "churn.csv")["probability"], out["probability"].head(300), atol=1e-6
    )
    bad = frame.head(10).copy()
    bad.loc[3, churn_names[1]] = np.nan
    bad_csv = tmp_path / "bad.csv"
    bad.to_csv(bad_csv, index=False)
    run = _cli(
        *target, "score", "churn", "--input", str(bad_csv), "--output", str(tmp_path / "x.csv")
    )
    assert run.returncode == 2
    assert "INVALID_ARGUMENT" in run.stderr
    assert churn_names[1] in run.stderr
    assert "Traceback" not in run.stderr
    run = _cli(*target, "score", "churn", "--input", str(tmp_path / "missing.csv"), "--output", "x")
    assert run.returncode == 2
    assert "cannot read" in run.stderr

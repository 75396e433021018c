"""`crm-client integrity ...` against the real server: hash, append, prove, verify."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clients.cli import main as cli_main
from crm.canonical import encode_row
from crm.lineage import digest_file
from crm.merkle import leaf_hash
from tests.conftest import StartServer
from tests.integrity.helpers import transaction_rows, write_csv
from tests.serverproc import RunningServer, launch


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = launch(tmp_path_factory.mktemp("artifacts"), tmp_path_factory.mktemp("data"))
    yield running
    running.kill()


def run(
    capsys: pytest.CaptureFixture[str], server: RunningServer, *argv: str
) -> tuple[int, dict[str, Any], str]:
    """The real `crm-client` entry point, in-process so capsys sees its output."""
    code = cli_main(["--target", server.target, "integrity", *argv])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else {}, err


def test_hash_append_prove_verify(
    server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = transaction_rows(120, seed=1)
    csv_path = write_csv(tmp_path / "tx.csv", rows)
    expected = digest_file(csv_path)

    code, out, _ = run(capsys, server, "hash", str(csv_path), "--local")
    assert code == 0
    assert out["matches_local"] is True
    assert (out["sha256"], out["merkle_root"], out["rows"]) == (
        expected.sha256.hex(),
        expected.merkle_root.hex(),
        120,
    )

    code, out, _ = run(capsys, server, "append", str(csv_path), "--log", "sales", "--batch", "50")
    assert code == 0
    assert (out["first_index"], out["appended"]) == (0, 120)
    assert out["tree_head"]["tree_size"] == 120
    assert out["root_matches_dataset"] is True  # the log's root is the dataset's lineage root

    code, out, _ = run(capsys, server, "prove", "--index", "7", "--log", "sales")
    assert code == 0
    assert out["verified"] is True
    assert out["leaf_data"].encode() == encode_row(rows[7])
    key = out["tree_head"]["public_key"]

    code, out, _ = run(
        capsys, server, "prove", "--leaf-hash", leaf_hash(encode_row(rows[9])).hex(),
        "--log", "sales", "--public-key", key,
    )  # fmt: skip
    assert (code, out["leaf_index"]) == (0, 9)

    state = tmp_path / "head.json"
    code, out, _ = run(capsys, server, "verify", "--log", "sales", "--state", str(state))
    assert (code, out["first_use"], out["tree_size"]) == (0, True, 120)
    assert json.loads(state.read_text())["tree_size"] == 120

    more = write_csv(tmp_path / "more.csv", transaction_rows(30, seed=2))
    assert run(capsys, server, "append", str(more), "--log", "sales")[0] == 0
    code, out, _ = run(capsys, server, "verify", "--log", "sales", "--state", str(state))
    assert (code, out["previous_tree_size"], out["tree_size"]) == (0, 120, 150)
    assert json.loads(state.read_text())["tree_size"] == 150


def test_verify_catches_a_rewritten_history(
    start_server: StartServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    state = tmp_path / "head.json"
    server = start_server(data_dir=data_dir)
    original = write_csv(tmp_path / "a.csv", transaction_rows(50, seed=3))
    assert run(capsys, server, "append", str(original), "--log", "h")[0] == 0
    assert run(capsys, server, "verify", "--log", "h", "--state", str(state))[0] == 0
    saved = state.read_text()
    assert server.stop() == 0

    # The operator wipes the log and writes a different history with the same signing key.
    for path in (data_dir / "integrity").glob("logs.sqlite3*"):
        path.unlink()
    server = start_server(data_dir=data_dir)
    forged = write_csv(tmp_path / "b.csv", transaction_rows(80, seed=4))
    assert run(capsys, server, "append", str(forged), "--log", "h")[0] == 0

    code, out, err = run(capsys, server, "verify", "--log", "h", "--state", str(state))
    assert code == 1
    assert out["verified"] is False
    assert "not an extension" in err
    assert state.read_text() == saved  # the trusted head is kept, not replaced by the forgery


def test_verify_rejects_a_head_signed_by_another_key(
    start_server: StartServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "head.json"
    rows = write_csv(tmp_path / "a.csv", transaction_rows(10, seed=5))
    first = start_server()
    assert run(capsys, first, "append", str(rows), "--log", "k")[0] == 0
    assert run(capsys, first, "verify", "--log", "k", "--state", str(state))[0] == 0

    other = start_server()  # a different data dir: a different key, the same rows
    assert run(capsys, other, "append", str(rows), "--log", "k")[0] == 0
    code, out, err = run(capsys, other, "verify", "--log", "k", "--state", str(state))
    assert (code, out["verified"]) == (1, False)
    assert "expected" in err


def test_usage_and_server_errors_exit_2(
    server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, server, "prove", "--index", "0", "--log", "empty")
    assert code == 2
    assert "NOT_FOUND" in err
    rows = write_csv(tmp_path / "a.csv", transaction_rows(3))
    assert run(capsys, server, "append", str(rows), "--log", "p")[0] == 0
    code, _, err = run(capsys, server, "prove", "--index", "3", "--log", "p")
    assert code == 2
    assert "leaf_index" in err
    bad = tmp_path / "bad.csv"
    bad.write_text("Invoice,StockCode\n1,2\n")
    code, _, err = run(capsys, server, "append", str(bad), "--log", "p")
    assert code == 2
    assert "lacks column" in err

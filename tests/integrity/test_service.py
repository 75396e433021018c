"""IntegrityService over gRPC against the real server process (`python -m server`)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from google.protobuf import timestamp_pb2

from clients.errors import CrmError
from clients.integrity import (
    Appended,
    IntegrityClient,
    TreeHead,
    VerificationError,
    verify_consistency,
    verify_inclusion,
    verify_tree_head,
)
from crm.canonical import encode_row
from crm.lineage import digest_file
from crm.merkle import leaf_hash, root_from_leaf_hashes
from crm.v1 import common_pb2, integrity_pb2, integrity_pb2_grpc
from tests.conftest import StartServer
from tests.integrity.helpers import transaction_rows, write_csv
from tests.serverproc import RunningServer, launch


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = launch(tmp_path_factory.mktemp("artifacts"), tmp_path_factory.mktemp("data"))
    yield running
    running.kill()


@pytest.fixture
def client(server: RunningServer) -> IntegrityClient:
    return IntegrityClient(server.channel)


def line(invoice: str, quantity: float, price: float, when: datetime) -> common_pb2.TransactionLine:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(when)
    return common_pb2.TransactionLine(
        invoice=invoice,
        stock_code="85123A",
        description="WHITE HANGING HEART T-LIGHT HOLDER",
        quantity=quantity,
        invoice_date=ts,
        price=price,
        customer_id="17850",
        country="United Kingdom",
        category="home",
    )


def test_hash_dataset_matches_lineage_and_sha256sum(
    client: IntegrityClient, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "tx.csv", transaction_rows(2000))
    remote = client.hash_file(path, chunk_bytes=777)  # chunks split rows and UTF-8 anywhere
    assert remote == digest_file(path)
    assert remote.rows == 2000
    assert remote.bytes == path.stat().st_size
    assert remote.sha256 == hashlib.sha256(path.read_bytes()).digest()
    if shutil.which("sha256sum"):
        printed = subprocess.run(
            ["sha256sum", str(path)], check=True, capture_output=True, text=True
        )
        assert printed.stdout.split()[0] == remote.sha256.hex()


def test_append_prove_and_extend(client: IntegrityClient) -> None:
    leaves = [b"leaf %d" % i for i in range(37)]
    heads: list[TreeHead] = []
    first_indexes = []
    for start in range(0, 37, 10):
        appended = client.append_leaves(leaves[start : start + 10], log="e2e")
        first_indexes.append(appended.first_index)
        heads.append(appended.tree_head)
    assert first_indexes == [0, 10, 20, 30]
    head = client.tree_head("e2e")
    assert head == heads[-1]
    assert head.tree_size == 37
    assert head.root_hash == root_from_leaf_hashes(leaf_hash(d) for d in leaves)
    for h in heads:
        verify_tree_head(h, trusted_key=head.public_key)
    for index in (0, 17, 36):
        proof = client.inclusion_proof(leaf_index=index, tree_size=37, log="e2e")
        verify_inclusion(proof, head, leaves[index])
        by_hash = client.inclusion_proof(leaf_hash=leaf_hash(leaves[index]), log="e2e")
        assert by_hash == proof
    # A proof against an older head, at that head's size.
    old = heads[1]
    proof = client.inclusion_proof(leaf_index=5, tree_size=old.tree_size, log="e2e")
    verify_inclusion(proof, old, leaves[5])
    with pytest.raises(VerificationError):
        verify_inclusion(proof, head, leaves[5])  # a size-20 proof does not fit the size-37 head
    for old in heads:
        cons = client.consistency_proof(old.tree_size, 0, log="e2e")
        verify_consistency(old, head, cons)
    assert client.prove_extends(heads[0]) == head
    got = client.leaves(10, 20, log="e2e")
    assert [leaf.data for leaf in got] == leaves[10:20]
    assert [leaf.index for leaf in got] == list(range(10, 20))
    assert all(leaf.leaf_hash == leaf_hash(leaf.data) for leaf in got)


def test_append_transactions_logs_canonical_rows(client: IntegrityClient, tmp_path: Path) -> None:
    when = datetime(2010, 12, 1, 8, 26, tzinfo=UTC)
    lines = [line("536365", 6, 2.55, when), line("C536379", -1.0, 0.85, when)]
    appended: Appended = client.append_transactions(lines, log="tx")
    expected = [
        encode_row(["536365", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", "6",
                    "2010-12-01 08:26:00", "2.55", "17850", "United Kingdom"]),
        encode_row(["C536379", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", "-1",
                    "2010-12-01 08:26:00", "0.85", "17850", "United Kingdom"]),
    ]  # fmt: skip
    assert expected[0].startswith(b'["536365","85123A"')
    assert appended.leaf_hashes == tuple(leaf_hash(e) for e in expected)
    assert [leaf.data for leaf in client.leaves(0, 2, log="tx")] == expected
    # The same rows in a CSV hash (HashDataset) to the log's root: one canonical encoding.
    path = write_csv(
        tmp_path / "same.csv",
        [
            ["536365", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", "6", "12/1/2010 8:26",
             "2.55", "17850.0", "United Kingdom"],
            ["C536379", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", "-1", "2010-12-01 08:26",
             "0.850", "17850", "United Kingdom"],
        ],
    )  # fmt: skip
    assert client.hash_file(path).merkle_root == appended.tree_head.root_hash


def rpc_error(call: Callable[[], object]) -> CrmError:
    with pytest.raises(CrmError) as err:
        call()
    return err.value


def test_bad_input_is_invalid_argument_with_the_field(
    client: IntegrityClient, server: RunningServer
) -> None:
    client.append_leaves([b"a", b"b", b"c"], log="bad")
    before = client.tree_head("bad")
    stub = integrity_pb2_grpc.IntegrityServiceStub(server.channel)
    when = datetime(2011, 1, 1, tzinfo=UTC)
    no_date = line("1", 1, 1, when)
    no_date.ClearField("invoice_date")

    def hash_stream(*requests: integrity_pb2.HashDatasetRequest) -> Callable[[], object]:
        def call() -> object:
            try:
                return stub.HashDataset(iter(requests), timeout=10)
            except grpc.RpcError as err:
                raise CrmError.from_rpc_error(err) from None

        return call

    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: client.append_leaves([], log="bad"), "leaves"),
        (lambda: client.append_leaves([b"x"], log="no spaces"), "log"),
        (lambda: client.append_transactions([], log="bad"), "transactions"),
        (
            lambda: client.append_transactions(
                [line("1", 1, 1, when), line("2", float("nan"), 1, when)], log="bad"
            ),
            "transactions[1].quantity",
        ),
        (lambda: client.append_transactions([no_date], log="bad"), "transactions[0].invoice_date"),
        (lambda: client.inclusion_proof(leaf_index=3, log="bad"), "leaf_index"),
        (lambda: client.inclusion_proof(leaf_index=0, tree_size=9, log="bad"), "tree_size"),
        (lambda: client.inclusion_proof(leaf_hash=b"short", log="bad"), "leaf_hash"),
        (lambda: client.inclusion_proof(log="bad"), "leaf"),
        (lambda: client.consistency_proof(0, 2, log="bad"), "first_tree_size"),
        (lambda: client.consistency_proof(3, 2, log="bad"), "first_tree_size"),
        (lambda: client.consistency_proof(1, 2**64 - 1, log="bad"), "second_tree_size"),
        (lambda: client.leaves(2**63, 2**64 - 1, log="bad"), "start"),
        (lambda: client.leaves(2, 2, log="bad"), "end"),
        (lambda: client.leaves(0, 4, log="bad"), "end"),
        (hash_stream(integrity_pb2.HashDatasetRequest(format=7, chunk=b"x")), "format"),
        (hash_stream(integrity_pb2.HashDatasetRequest(chunk=b"not,a,header\n1,2,3\n")), "chunk"),
        (hash_stream(integrity_pb2.HashDatasetRequest(chunk=b"\xff\xfe\x00")), "chunk"),
        (hash_stream(), "chunk"),  # nothing sent: no header
    ]
    for call, field in cases:
        err = rpc_error(call)
        assert err.code == grpc.StatusCode.INVALID_ARGUMENT, (field, err)
        assert [v.field for v in err.violations] == [field], err
    unknown = rpc_error(lambda: client.tree_head("never-written"))
    assert unknown.code == grpc.StatusCode.NOT_FOUND
    missing = rpc_error(lambda: client.inclusion_proof(leaf_hash=leaf_hash(b"z"), log="bad"))
    assert missing.code == grpc.StatusCode.NOT_FOUND
    assert client.tree_head("bad") == before  # refused calls wrote nothing
    assert rpc_error(lambda: client.tree_head("no spaces")).code == grpc.StatusCode.INVALID_ARGUMENT


def test_limits_on_appends_and_reads(start_server: StartServer) -> None:
    running = start_server(extra_args=["--max-request-rows", "10", "--max-message-mb", "1"])
    client = IntegrityClient(running.channel)
    err = rpc_error(lambda: client.append_leaves([b"%d" % i for i in range(11)]))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in err.violations] == ["leaves"]
    assert client.append_leaves([b"%d" % i for i in range(10)]).tree_head.tree_size == 10
    # GetLeaves refuses a range whose data would not fit in one 1 MiB response.
    for k in range(3):
        client.append_leaves([bytes([k]) * 400_000])
    err = rpc_error(lambda: client.leaves(10, 13))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in err.violations] == ["end"]
    assert [len(leaf.data) for leaf in client.leaves(10, 12)] == [400_000, 400_000]


def test_log_and_key_survive_a_restart(start_server: StartServer, tmp_path: Path) -> None:
    first = start_server(data_dir=tmp_path)
    head = IntegrityClient(first.channel).append_leaves([b"a", b"b", b"c"], "keep").tree_head
    assert first.stop() == 0
    key_file = tmp_path / "integrity" / "sth-ed25519.pem"
    assert key_file.stat().st_mode & 0o777 == 0o600

    second = start_server(data_dir=tmp_path)
    client = IntegrityClient(second.channel)
    assert client.tree_head("keep") == head
    client.append_leaves([b"d"], "keep")
    assert client.prove_extends(head, trusted_key=head.public_key).tree_size == 4


def test_acknowledged_appends_survive_kill_9(start_server: StartServer, tmp_path: Path) -> None:
    running = start_server(data_dir=tmp_path)
    client = IntegrityClient(running.channel)
    acked: list[Appended] = []
    enough = threading.Event()
    stopped: list[BaseException] = []

    def appender() -> None:
        n = 0
        try:
            while True:
                appended = client.append_leaves([b"tx-%d" % i for i in range(n, n + 25)], "k9")
                acked.append(appended)
                n = appended.tree_head.tree_size
                if len(acked) == 30:
                    enough.set()
        except CrmError as err:  # the server died under us
            stopped.append(err)
            enough.set()

    thread = threading.Thread(target=appender)
    thread.start()
    assert enough.wait(60)
    running.kill()  # SIGKILL while the appender keeps sending
    thread.join(30)
    assert stopped and not thread.is_alive()
    assert len(acked) >= 30

    restarted = start_server(data_dir=tmp_path)
    client = IntegrityClient(restarted.channel)
    head = client.tree_head("k9")
    key = acked[0].tree_head.public_key
    assert head.public_key == key
    assert head.tree_size >= acked[-1].tree_head.tree_size
    for appended in acked:
        assert client.prove_extends(appended.tree_head, trusted_key=key) == head
    data = [leaf.data for s in range(0, head.tree_size, 1000) for leaf in client.leaves(
        s, min(s + 1000, head.tree_size), "k9")]  # fmt: skip
    assert data == [b"tx-%d" % i for i in range(head.tree_size)]

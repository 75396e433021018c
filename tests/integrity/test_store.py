"""The log stores (SQLite and PostgreSQL, tests/integrity/conftest.py): stored-subtree proofs
against the in-memory reference, persistence, signatures, bad input, concurrency and crashes."""

from __future__ import annotations

import math
import os
import random
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from clients.integrity import TreeHead as ClientHead
from clients.integrity import VerificationError, verify_tree_head
from crm.merkle import (
    StreamingRoot,
    consistency_proof,
    inclusion_path,
    leaf_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from server.errors import InvalidArgument, NotFound
from server.integrity.base import LogStoreBase
from server.integrity.records import TreeHead
from server.integrity.signer import KEY_FILE, TreeHeadSigner
from server.integrity.store import DB_FILE, EPOCH_BITS, LogStore
from server.integrity.tree import consistency_ranges, inclusion_ranges, range_hashes
from tests.integrity.conftest import OpenStore, store_opener

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(open_store: OpenStore, tmp_path: Path) -> Iterator[LogStoreBase]:
    s = open_store(tmp_path)
    yield s
    s.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[LogStore]:
    s = LogStore(tmp_path, TreeHeadSigner.load_or_create(tmp_path))
    yield s
    s.close()


def client_head(head: TreeHead, public_key: bytes) -> ClientHead:
    return ClientHead(
        head.log, head.tree_size, head.root_hash, head.timestamp_ms, head.signature, public_key
    )


def append_in_random_batches(store: LogStoreBase, log: str, leaves: list[bytes], seed: int) -> None:
    rng = random.Random(seed)
    pos = 0
    while pos < len(leaves):
        k = rng.randint(1, 23)
        store.append(log, leaves[pos : pos + k])
        pos += k


LEAVES_300 = [b"txn-%04d" % i for i in range(300)]
HASHES_300 = [leaf_hash(d) for d in LEAVES_300]


@pytest.fixture(scope="module")
def store_300(
    tmp_path_factory: pytest.TempPathFactory, module_store_opener: OpenStore
) -> Iterator[LogStoreBase]:
    s = module_store_opener(tmp_path_factory.mktemp("store300"))
    append_in_random_batches(s, "t", LEAVES_300, seed=7)
    yield s
    s.close()


def test_stored_subtree_proofs_equal_the_reference_for_every_size(store_300: LogStoreBase) -> None:
    rng = random.Random(1)
    for n in range(1, 301):
        hashes = HASHES_300[:n]
        indexes = {0, n - 1, n // 2, rng.randrange(n), rng.randrange(n)}
        for i in indexes:
            proof = store_300.inclusion_proof("t", leaf_index=i, tree_size=n)
            assert list(proof.audit_path) == inclusion_path(hashes, i), (i, n)
            assert proof.root_hash == root_from_leaf_hashes(hashes)
            assert proof.leaf_hash == hashes[i]
        for m in {1, n // 2 or 1, n - 1 or 1, n, rng.randint(1, n)}:
            cproof = store_300.consistency_proof("t", m, n)
            assert list(cproof.proof) == consistency_proof(hashes, m), (m, n)
            assert cproof.first_root_hash == root_from_leaf_hashes(HASHES_300[:m])


@settings(database=None, deadline=None, max_examples=150)
@given(st.data())
def test_stored_proofs_verify(store_300: LogStoreBase, data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 300), label="size")
    i = data.draw(st.integers(0, n - 1), label="index")
    m = data.draw(st.integers(1, n), label="old size")
    proof = store_300.inclusion_proof("t", leaf_index=i, tree_size=n)
    assert verify_inclusion(HASHES_300[i], i, n, proof.audit_path, proof.root_hash)
    cproof = store_300.consistency_proof("t", m, n)
    assert verify_consistency(m, n, cproof.first_root_hash, cproof.second_root_hash, cproof.proof)


def test_every_planned_proof_verifies_up_to_300_leaves() -> None:
    """Every (index, size) and (old size, size) pair up to 300, through the store's own proof
    planning and folding over an in-memory table of the subtree hashes appends produce."""
    nodes: dict[tuple[int, int], bytes] = {}
    acc = StreamingRoot()
    completed: list[tuple[int, int, bytes]] = []
    roots = []
    for i, h in enumerate(HASHES_300):
        nodes[(0, i)] = h
        acc.add_leaf_hash(h, completed)
        roots.append(acc.root())
    nodes.update({(level, idx): h for level, idx, h in completed})

    def fetch(keys: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        return {k: nodes[k] for k in keys}

    for n in range(1, 301):
        root = roots[n - 1]
        assert range_hashes([(0, n)], fetch) == [root]
        for i in range(n):
            path = range_hashes(inclusion_ranges(i, n), fetch)
            assert verify_inclusion(HASHES_300[i], i, n, path, root), (i, n)
        for m in range(1, n + 1):
            proof = range_hashes(consistency_ranges(m, n), fetch)
            assert verify_consistency(m, n, roots[m - 1], root, proof), (m, n)


def test_proof_cost_grows_with_log_n_not_n(sqlite_store: LogStore) -> None:
    """Proofs fold O(log n) stored hashes: SQLite work on a 16x larger log grows by the ratio
    of the logarithms (~1.4x), where anything reading the leaves would grow 16x."""
    store = sqlite_store
    sizes = {"small": 1000, "large": 16000}
    for name, n in sizes.items():
        store.append(name, [b"%d" % i for i in range(n)])
    conn = store._reader()  # this thread's connection: count what a proof makes SQLite do
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    vm_steps = [0]

    def tick() -> int:
        vm_steps[0] += 1
        return 0

    conn.set_progress_handler(tick, 1)

    def measure(call: Callable[..., object], *args: object, **kwargs: object) -> int:
        statements.clear()
        vm_steps[0] = 0
        call(*args, **kwargs)
        assert len(statements) <= 3 * math.ceil(math.log2(16000)) + 4, len(statements)
        assert not any("data" in s for s in statements)  # hashes only, never leaves
        return vm_steps[0]

    rng = random.Random(3)
    worst: dict[str, int] = {}
    for name, n in sizes.items():
        costs = []
        for _ in range(60):
            size = rng.randint(n // 2, n)
            index = rng.randrange(size)
            costs.append(measure(store.inclusion_proof, name, leaf_index=index, tree_size=size))
            costs.append(measure(store.consistency_proof, name, rng.randint(1, size), size))
        worst[name] = max(costs)
    conn.set_progress_handler(None, 1)
    conn.set_trace_callback(None)
    assert worst["large"] < 2 * worst["small"], worst


def test_log_survives_a_restart(open_store: OpenStore, tmp_path: Path) -> None:
    first = open_store(tmp_path)
    first.append("sales", [b"a", b"b", b"c"])
    head = first.tree_head("sales")
    key = first.signer.public_key
    first.close()

    again = open_store(tmp_path)
    assert again.tree_head("sales") == head
    assert again.signer.public_key == key
    again.append("sales", [b"d", b"e"])
    new = again.tree_head("sales")
    assert new.tree_size == 5
    assert new.root_hash == root_from_leaf_hashes([leaf_hash(bytes([x])) for x in b"abcde"])
    proof = again.consistency_proof("sales", 3, 5)
    assert verify_consistency(3, 5, head.root_hash, new.root_hash, proof.proof)
    assert [leaf.data for leaf in again.leaves("sales", 0, 5)] == [b"a", b"b", b"c", b"d", b"e"]
    again.close()


def test_named_logs_live_side_by_side(store: LogStoreBase) -> None:
    store.append("", [b"x"])
    store.append("eu.sales-2024_q1", [b"y", b"z"])
    assert store.tree_head("default").tree_size == 1
    assert store.tree_head("").root_hash == leaf_hash(b"x")
    other = store.tree_head("eu.sales-2024_q1")
    assert other.tree_size == 2
    assert other.root_hash == root_from_leaf_hashes([leaf_hash(b"y"), leaf_hash(b"z")])
    with pytest.raises(NotFound):
        store.tree_head("never-appended")


def test_heads_are_signed_and_time_never_goes_back(open_store: OpenStore, tmp_path: Path) -> None:
    clock = iter([5_000, 9_000, 7_000])  # the wall clock steps back on the third append
    s = open_store(tmp_path, clock_ms=lambda: next(clock))
    heads = [s.append("t", [b"%d" % i]).head for i in range(3)]
    assert [h.timestamp_ms for h in heads] == [5_000, 9_000, 9_000]
    for head in heads:
        verify_tree_head(client_head(head, s.signer.public_key))
    s.close()


def test_signing_key_is_private_reused_and_other_keys_are_rejected(
    tmp_path: Path, store: LogStoreBase
) -> None:
    key_file = tmp_path / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert TreeHeadSigner.load_or_create(tmp_path).public_key == store.signer.public_key
    head = client_head(store.append("t", [b"a"]).head, store.signer.public_key)
    verify_tree_head(head, trusted_key=store.signer.public_key)

    impostor = TreeHeadSigner(Ed25519PrivateKey.generate())
    forged = ClientHead(
        head.log,
        head.tree_size,
        head.root_hash,
        head.timestamp_ms,
        impostor.sign(head.log, head.tree_size, head.timestamp_ms, head.root_hash),
        impostor.public_key,
    )
    verify_tree_head(forged)  # self-consistent, but...
    with pytest.raises(VerificationError, match="expected"):
        verify_tree_head(forged, trusted_key=store.signer.public_key)  # ...not the pinned key
    # The impostor's signature under the real key, and a tampered size, both fail.
    with pytest.raises(VerificationError, match="signature"):
        verify_tree_head(
            ClientHead(*[*vars(forged).values()][:5], store.signer.public_key),
            trusted_key=store.signer.public_key,
        )
    tampered = ClientHead(
        head.log, 2, head.root_hash, head.timestamp_ms, head.signature, head.public_key
    )
    with pytest.raises(VerificationError):
        verify_tree_head(tampered)


def _fields(err: pytest.ExceptionInfo[InvalidArgument]) -> list[str]:
    return [v.field for v in err.value.violations]


def test_bad_input_names_the_field_and_writes_nothing(store: LogStoreBase) -> None:
    store.append("t", [b"a", b"b", b"c"])
    before = store.tree_head("t")
    cases = [
        (lambda: store.append("t", []), "leaves"),
        (lambda: store.append("bad name!", [b"x"]), "log"),
        (lambda: store.append("x" * 65, [b"x"]), "log"),
        (lambda: store.inclusion_proof("t", leaf_index=3), "leaf_index"),
        (lambda: store.inclusion_proof("t", leaf_index=0, tree_size=4), "tree_size"),
        (lambda: store.inclusion_proof("t", leaf_hash=b"\x00" * 31), "leaf_hash"),
        (lambda: store.inclusion_proof("t"), "leaf"),
        (lambda: store.consistency_proof("t", 0, 2), "first_tree_size"),
        (lambda: store.consistency_proof("t", 3, 2), "first_tree_size"),
        (lambda: store.consistency_proof("t", 1, 4), "second_tree_size"),
        (lambda: store.leaves("t", 3, 4), "start"),
        (lambda: store.leaves("t", 1, 1), "end"),
        (lambda: store.leaves("t", 0, 4), "end"),
    ]
    for call, field in cases:
        with pytest.raises(InvalidArgument) as err:
            call()
        assert _fields(err) == [field]
    with pytest.raises(NotFound):
        store.inclusion_proof("t", leaf_hash=leaf_hash(b"not there"))
    with pytest.raises(NotFound):
        store.inclusion_proof("t", leaf_hash=leaf_hash(b"c"), tree_size=2)  # only in size 3
    assert store.tree_head("t") == before
    with pytest.raises(NotFound):
        store.tree_head("x" * 64)  # the refused append to a fresh name created nothing


def test_leaf_hash_lookup_finds_the_first_occurrence(store: LogStoreBase) -> None:
    store.append("t", [b"a", b"dup", b"b", b"dup"])
    proof = store.inclusion_proof("t", leaf_hash=leaf_hash(b"dup"))
    assert (proof.leaf_index, proof.tree_size) == (1, 4)
    assert verify_inclusion(proof.leaf_hash, 1, 4, proof.audit_path, proof.root_hash)


def test_leaf_hash_lookup_across_index_epochs(store: LogStoreBase) -> None:
    epoch = 1 << EPOCH_BITS
    data = [b"%d" % i for i in range(2 * epoch + 10)]
    data[epoch + 3] = b"dup"  # first occurrence, in epoch 1
    data[2 * epoch + 1] = b"dup"  # again in epoch 2
    data[2 * epoch + 5] = b"late"
    store.append("e", data)
    assert store.inclusion_proof("e", leaf_hash=leaf_hash(b"dup")).leaf_index == epoch + 3
    assert store.inclusion_proof("e", leaf_hash=leaf_hash(b"late")).leaf_index == 2 * epoch + 5
    assert store.inclusion_proof("e", leaf_hash=leaf_hash(b"7")).leaf_index == 7
    with pytest.raises(NotFound):
        store.inclusion_proof("e", leaf_hash=leaf_hash(b"late"), tree_size=2 * epoch + 5)
    with pytest.raises(NotFound):
        store.inclusion_proof("e", leaf_hash=leaf_hash(b"dup"), tree_size=epoch + 3)


def test_concurrent_appends_and_proofs(store: LogStoreBase) -> None:
    errors: list[BaseException] = []

    def appender(worker: int) -> None:
        try:
            for batch in range(25):
                store.append("c", [b"w%d-b%d-%d" % (worker, batch, k) for k in range(8)])
        except BaseException as err:
            errors.append(err)

    def prover() -> None:
        try:
            for _ in range(150):
                try:
                    head = store.tree_head("c")
                except NotFound:
                    continue
                i = random.randrange(head.tree_size)
                proof = store.inclusion_proof("c", leaf_index=i, tree_size=head.tree_size)
                assert proof.root_hash == head.root_hash
                assert verify_inclusion(
                    proof.leaf_hash, i, head.tree_size, proof.audit_path, head.root_hash
                )
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=appender, args=(w,)) for w in range(4)]
    threads += [threading.Thread(target=prover) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    head = store.tree_head("c")
    assert head.tree_size == 4 * 25 * 8
    stored = [leaf.data for s in range(0, 800, 200) for leaf in store.leaves("c", s, s + 200)]
    assert len(set(stored)) == 800
    # Batches stay contiguous: appends are atomic even when threads interleave.
    for start in range(0, 800, 8):
        assert len({d.rsplit(b"-", 1)[0] for d in stored[start : start + 8]}) == 1
    assert head.root_hash == root_from_leaf_hashes([leaf_hash(d) for d in stored])


def test_two_stores_on_one_directory_share_the_log(open_store: OpenStore, tmp_path: Path) -> None:
    """As with several server processes on one data dir (or replicas on one database): each
    append starts from the tree the other one committed, never from a stale copy of its own."""
    a, b = open_store(tmp_path), open_store(tmp_path)
    leaves = [b"%d" % i for i in range(40)]
    for i in range(0, 40, 5):
        (a if i % 10 else b).append("shared", leaves[i : i + 5])
    for s in (a, b):
        assert s.tree_head("shared").root_hash == root_from_leaf_hashes(map(leaf_hash, leaves))
    a.close()
    b.close()


CHILD = """
import sys
from pathlib import Path
from tests.integrity.conftest import store_opener
store = store_opener(sys.argv[2], sys.argv[3])(Path(sys.argv[1]))
n = 0
while True:
    head = store.append("crash", [b"leaf-%d" % i for i in range(n, n + 50)]).head
    n = head.tree_size
    print(n, head.root_hash.hex(), flush=True)
"""


def _stored_leaves(backend: str, directory: Path, url: str) -> list[bytes]:
    """Every leaf row the database holds, read past the store."""
    if backend == "sqlite":
        conn = sqlite3.connect(directory / DB_FILE)
        rows = conn.execute("SELECT data FROM leaves ORDER BY idx").fetchall()
        conn.close()
        return [r[0] for r in rows]
    import psycopg

    with psycopg.connect(url) as pg:
        return [bytes(r[0]) for r in pg.execute("SELECT data FROM integrity_leaves ORDER BY idx")]


def test_acknowledged_appends_survive_kill_9(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = request.getfixturevalue("pg_url") if backend == "postgres" else ""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path), backend, url],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    acked: list[tuple[int, bytes]] = []
    for line in child.stdout:
        size, root = line.split()
        acked.append((int(size), bytes.fromhex(root)))
        if len(acked) == 40:
            os.kill(child.pid, signal.SIGKILL)  # while it is busy with the next append
            break
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    store = store_opener(backend, url)(tmp_path)
    head = store.tree_head("crash")
    assert head.tree_size >= acked[-1][0]
    for size, root in acked:
        proof = store.consistency_proof("crash", size, head.tree_size)
        assert proof.first_root_hash == root
        assert verify_consistency(size, head.tree_size, root, head.root_hash, proof.proof)
    # The database is whole: exactly the committed leaves, and its root recomputes.
    rows = _stored_leaves(backend, tmp_path, url)
    assert rows == [b"leaf-%d" % i for i in range(head.tree_size)]
    assert head.root_hash == root_from_leaf_hashes(leaf_hash(r) for r in rows)
    store.append("crash", [b"after"])  # and it keeps working
    store.close()


def test_store_creates_its_directory_and_uses_wal(tmp_path: Path) -> None:
    s = LogStore(tmp_path / "integrity", TreeHeadSigner.load_or_create(tmp_path / "integrity"))
    s.append("t", [b"a"])
    mode = sqlite3.connect(tmp_path / "integrity" / DB_FILE).execute("PRAGMA journal_mode")
    assert mode.fetchone()[0] == "wal"
    s.close()

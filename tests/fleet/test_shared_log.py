"""Replicas sharing one PostgreSQL database serve one integrity log: concurrent appends from
every replica make one tree whose proofs verify from each, and a replica killed mid-append loses
no acknowledged write."""

from __future__ import annotations

import threading
from collections.abc import Callable

import grpc
import pytest

from clients.errors import CrmError
from clients.integrity import Appended, IntegrityClient, Leaf
from crm.merkle import leaf_hash, root_from_leaf_hashes
from tests.fleet.conftest import StartFleet
from tests.serverproc import RunningServer

BATCH = 4


def batch(replica: int, thread: int, number: int) -> list[bytes]:
    return [b"r%d-t%d-b%d-%d" % (replica, thread, number, k) for k in range(BATCH)]


def all_leaves(client: IntegrityClient, size: int, log: str) -> list[Leaf]:
    return [
        leaf
        for start in range(0, size, 1000)
        for leaf in client.leaves(start, min(start + 1000, size), log)
    ]


def append_from_every_replica(
    replicas: list[RunningServer],
    log: str,
    threads: int,
    keep_going: Callable[[int, int], bool],
) -> tuple[dict[int, list[tuple[list[bytes], Appended]]], dict[int, BaseException]]:
    """`threads` appenders per replica, each on its replica's own channel, while
    keep_going(replica, acked so far) holds; returns what each replica acknowledged and the
    error that stopped an appender, if any."""
    acked: dict[int, list[tuple[list[bytes], Appended]]] = {r: [] for r in range(len(replicas))}
    stopped: dict[int, BaseException] = {}
    lock = threading.Lock()

    def appender(r: int, t: int) -> None:
        channel = grpc.insecure_channel(replicas[r].target)  # its own, as a separate client
        client = IntegrityClient(channel, timeout=30)
        number = 0
        try:
            while keep_going(r, len(acked[r])):
                leaves = batch(r, t, number)
                appended = client.append_leaves(leaves, log)
                with lock:
                    acked[r].append((leaves, appended))
                number += 1
        except CrmError as err:
            stopped[r] = err
        finally:
            channel.close()

    workers = [
        threading.Thread(target=appender, args=(r, t))
        for r in range(len(replicas))
        for t in range(threads)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert not any(w.is_alive() for w in workers)
    return acked, stopped


@pytest.mark.parametrize("n", [2, 3])
def test_concurrent_appends_from_every_replica_make_one_tree(
    start_fleet: StartFleet, public_key: bytes, n: int
) -> None:
    replicas = start_fleet(n)
    per_replica = 24
    acked, stopped = append_from_every_replica(
        replicas, "fleet", threads=2, keep_going=lambda r, done: done < per_replica
    )
    assert not stopped, stopped
    clients = [IntegrityClient(r.channel) for r in replicas]
    heads = [c.verified_head("fleet", trusted_key=public_key) for c in clients]
    assert len(set(heads)) == 1, "every replica serves the same signed head"
    head = heads[0]
    total = sum(len(a) for a in acked.values())
    assert head.tree_size == total * BATCH

    stored = all_leaves(clients[0], head.tree_size, "fleet")
    assert head.root_hash == root_from_leaf_hashes(leaf_hash(leaf.data) for leaf in stored)
    assert len({leaf.data for leaf in stored}) == head.tree_size
    for i, (leaves, appended) in enumerate(p for r in sorted(acked) for p in acked[r]):
        # Each batch is contiguous where its reply said, and every head it got back is
        # signed by the one key and extends to the final tree, checked on another replica.
        first = appended.first_index
        assert [leaf.data for leaf in stored[first : first + BATCH]] == leaves
        other = clients[i % n]
        assert other.prove_extends(appended.tree_head, trusted_key=public_key) == head
        if i % 7 == 0:
            for client in clients:
                client.prove_leaf(first, "fleet", trusted_key=public_key)


def test_kill_9_of_a_replica_mid_append_loses_no_acknowledged_write(
    start_fleet: StartFleet, public_key: bytes
) -> None:
    doomed, survivor = start_fleet(2)
    killed = threading.Event()

    def keep_going(replica: int, done: int) -> bool:
        if replica == 0 and done >= 20 and not killed.is_set():
            killed.set()
            doomed.kill()  # SIGKILL while its other appender is mid-call
        return done < 40 if replica == 1 else True

    acked, stopped = append_from_every_replica([doomed, survivor], "k9", 2, keep_going)
    assert killed.is_set() and 0 in stopped and 1 not in stopped
    client = IntegrityClient(survivor.channel)
    head = client.verified_head("k9", trusted_key=public_key)
    stored = all_leaves(client, head.tree_size, "k9")
    for leaves, appended in (p for r in acked for p in acked[r]):
        assert client.prove_extends(appended.tree_head, trusted_key=public_key) == head
        first = appended.first_index
        assert [leaf.data for leaf in stored[first : first + BATCH]] == leaves
    # Nothing but whole batches: an append cut off by the kill left no partial rows.
    assert head.tree_size % BATCH == 0
    assert head.root_hash == root_from_leaf_hashes(leaf_hash(leaf.data) for leaf in stored)
    client.append_leaves([b"after"], "k9")  # and the log keeps taking appends

"""Durability under kill -9: every acknowledged write survives, every earlier head still proves.

Each cycle starts the real server (`python -m server`) on the same data dir, checks everything
acknowledged so far, then runs concurrent writers -- two AppendLeaves threads on one log, one
AppendTransactions thread, one SaveCampaign thread -- and SIGKILLs the server once a random
number of writes has been acknowledged, while the others are in flight. After the last cycle
the server is started once more and checked.

The check, against the restarted server:
- each acknowledged append: its leaves are at their indices (GetLeaves, leaf hashes), its
  signed head verifies (pinned key), its first and last leaves have inclusion proofs that verify
  against that head, and a consistency proof from that head to the current one verifies;
- the last head of each log in every earlier cycle is consistent with the current one;
- each acknowledged campaign is listed, identical to what SaveCampaign returned.
A write whose call failed (the kill) is unknown: it may be there or not, and nothing depends
on it. Verification is `clients/integrity.py`, the client-side code a user runs.

    python -m tests.integrity.durability --cycles 50 [--seed 7] [--data-dir DIR]
(`make durability ARGS="--cycles 50"`).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from google.protobuf import timestamp_pb2

from clients.errors import CrmError
from clients.integrity import (
    IntegrityClient,
    TreeHead,
    VerificationError,
    verify_consistency,
    verify_inclusion,
    verify_tree_head,
)
from crm.v1 import campaign_pb2, campaign_pb2_grpc, common_pb2
from tests.serverproc import RunningServer, launch

LEAVES_LOG = "durability-leaves"
TX_LOG = "durability-tx"
CALL_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Ack:
    """One acknowledged append: where its leaves are and the head that covered them."""

    first_index: int
    leaf_hashes: tuple[bytes, ...]
    head: TreeHead


@dataclass
class Ledger:
    """Everything acknowledged, across cycles."""

    appends: list[Ack] = field(default_factory=list)
    campaigns: dict[str, campaign_pb2.SavedCampaign] = field(default_factory=dict)
    cycle_heads: list[TreeHead] = field(default_factory=list)  # last head per log per cycle
    checked: int = 0  # appends[:checked] were checked on an earlier restart
    public_key: bytes | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def writes(self) -> int:
        return len(self.appends) + len(self.campaigns)


@dataclass(frozen=True)
class Report:
    cycles: int
    appends: int
    leaves: int
    campaigns: int
    checks: int  # verification calls made (proofs, reads, lists)
    seconds: float

    def summary(self) -> str:
        return (
            f"{self.cycles} kill -9 cycles: {self.appends} acknowledged appends"
            f" ({self.leaves} leaves) and {self.campaigns} campaigns all present, every proof"
            f" verified ({self.checks} checks) in {self.seconds:.1f} s"
        )


def _line(invoice: str, when: datetime) -> common_pb2.TransactionLine:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(when)
    return common_pb2.TransactionLine(
        invoice=invoice, stock_code="85123A", description="WHITE HANGING HEART T-LIGHT HOLDER",
        quantity=6, invoice_date=ts, price=2.55, customer_id="17850", country="United Kingdom",
    )  # fmt: skip


class _Writers:
    """Concurrent writers that record what the server acknowledged until their calls fail."""

    def __init__(self, server: RunningServer, ledger: Ledger, cycle: int, rng: random.Random):
        self._server = server
        self._ledger = ledger
        self._cycle = cycle
        self._seeds = [rng.randrange(2**32) for _ in range(4)]
        self._acked = 0
        self._target = 0
        self._reached = threading.Event()
        self._killed = threading.Event()
        self.errors: list[BaseException] = []
        self._threads = [
            threading.Thread(target=self._run, args=(work, seed), daemon=True)
            for work, seed in zip(
                (self._leaves, self._leaves, self._transactions, self._campaigns),
                self._seeds,
                strict=True,
            )
        ]

    def run_until(self, acks: int, timeout: float = 120.0) -> None:
        """Start writing; return once `acks` writes were acknowledged this cycle."""
        self._target = acks
        for thread in self._threads:
            thread.start()
        if not self._reached.wait(timeout):
            raise RuntimeError(f"only {self._acked} of {acks} writes acknowledged in {timeout} s")
        if self.errors:
            raise self.errors[0]

    def kill_server(self) -> None:
        """SIGKILL the server with writes in flight; writers stop at their (failing) call."""
        self._killed.set()
        self._server.kill()
        for thread in self._threads:
            thread.join(CALL_TIMEOUT_S + 10)
            if thread.is_alive():
                raise RuntimeError("a writer did not stop after the kill")
        if self.errors:
            raise self.errors[0]

    def _acknowledged(self) -> None:
        with self._ledger.lock:
            self._acked += 1
            if self._acked >= self._target:
                self._reached.set()

    def _failed(self, err: BaseException) -> None:
        self.errors.append(err)
        self._reached.set()  # the main thread reports it rather than waiting out the timeout

    def _run(self, work, seed: int) -> None:  # type: ignore[no-untyped-def]
        rng = random.Random(seed)
        channel = grpc.insecure_channel(self._server.target)
        try:
            n = 0
            while True:
                try:
                    work(channel, rng, n)
                except (CrmError, grpc.RpcError) as err:
                    if self._killed.is_set():
                        return  # the kill: this call's write is unknown
                    self._failed(err)
                    return
                n += 1
                self._acknowledged()
        except BaseException as err:  # reported to the main thread
            self._failed(err)
        finally:
            channel.close()

    def _leaves(self, channel: grpc.Channel, rng: random.Random, n: int) -> None:
        tag = f"c{self._cycle}-{threading.get_ident()}-{n}"
        leaves = [f"{tag}-{k}-{rng.random()}".encode() for k in range(rng.randint(1, 20))]
        appended = IntegrityClient(channel, CALL_TIMEOUT_S).append_leaves(leaves, LEAVES_LOG)
        with self._ledger.lock:
            self._ledger.appends.append(
                Ack(appended.first_index, appended.leaf_hashes, appended.tree_head)
            )

    def _transactions(self, channel: grpc.Channel, rng: random.Random, n: int) -> None:
        start = datetime(2010, 12, 1, tzinfo=UTC) + timedelta(minutes=n)
        lines = [
            _line(f"{self._cycle}{n:06d}{k:02d}", start + timedelta(seconds=k))
            for k in range(rng.randint(1, 10))
        ]
        appended = IntegrityClient(channel, CALL_TIMEOUT_S).append_transactions(lines, TX_LOG)
        with self._ledger.lock:
            self._ledger.appends.append(
                Ack(appended.first_index, appended.leaf_hashes, appended.tree_head)
            )

    def _campaigns(self, channel: grpc.Channel, rng: random.Random, n: int) -> None:
        stub = campaign_pb2_grpc.CampaignServiceStub(channel)
        plan = campaign_pb2.PlanCampaignsResponse(budget=rng.randint(1, 1000), algorithm="test")
        request = campaign_pb2.SaveCampaignRequest(
            name=f"cycle {self._cycle} #{n}", plan=plan, notes=f"{rng.random()}"
        )
        try:
            saved = stub.SaveCampaign(request, timeout=CALL_TIMEOUT_S).campaign
        except grpc.RpcError as err:
            raise CrmError.from_rpc_error(err) from None
        with self._ledger.lock:
            self._ledger.campaigns[saved.id] = saved


def check(server: RunningServer, ledger: Ledger, everything: bool = False) -> int:
    """Everything in the ledger is on `server`; returns the number of checks made.

    Appends checked on an earlier restart are covered by the consistency proofs from that
    restart's heads to the current ones (so the cost stays linear); `everything` checks every
    append again."""
    client = IntegrityClient(server.channel, CALL_TIMEOUT_S)
    checks = 0
    current: dict[str, TreeHead] = {}
    for log in (LEAVES_LOG, TX_LOG):
        if any(a.head.log == log for a in ledger.appends):
            current[log] = client.verified_head(log, ledger.public_key)
            if ledger.public_key is None:
                ledger.public_key = current[log].public_key
    for ack in ledger.appends[0 if everything else ledger.checked :]:
        log, head = ack.head.log, ack.head
        verify_tree_head(head, ledger.public_key)
        now = current[log]
        if now.tree_size < head.tree_size:
            raise VerificationError(f"{log}: size {now.tree_size} < acknowledged {head.tree_size}")
        end = ack.first_index + len(ack.leaf_hashes)
        stored = client.leaves(ack.first_index, end, log)
        if tuple(leaf.leaf_hash for leaf in stored) != ack.leaf_hashes:
            raise VerificationError(f"{log}: leaves [{ack.first_index}, {end}) differ")
        for index in {ack.first_index, end - 1}:
            proof = client.inclusion_proof(leaf_index=index, tree_size=head.tree_size, log=log)
            leaf = stored[index - ack.first_index]
            verify_inclusion(proof, head, leaf.data)
            checks += 1
        verify_consistency(head, now, client.consistency_proof(head.tree_size, 0, log))
        checks += 2
    for old in ledger.cycle_heads:
        now = current[old.log]
        verify_consistency(
            old, now, client.consistency_proof(old.tree_size, now.tree_size, old.log)
        )
        checks += 1
    listed: dict[str, campaign_pb2.SavedCampaign] = {}
    stub = campaign_pb2_grpc.CampaignServiceStub(server.channel)
    token = ""
    while True:
        page = stub.ListCampaigns(
            campaign_pb2.ListCampaignsRequest(page_size=100, page_token=token),
            timeout=CALL_TIMEOUT_S,
        )
        listed.update((c.id, c) for c in page.campaigns)
        checks += 1
        token = page.next_page_token
        if not token:
            break
    for campaign_id, saved in ledger.campaigns.items():
        if listed.get(campaign_id) != saved:
            raise VerificationError(f"acknowledged campaign {campaign_id} is missing or changed")
    ledger.cycle_heads = [*ledger.cycle_heads, *current.values()]
    ledger.checked = len(ledger.appends)
    return checks


def run(
    cycles: int,
    data_dir: Path,
    artifacts: Path,
    *,
    seed: int = 0,
    min_acks: int = 4,
    max_acks: int = 40,
    log=print,  # type: ignore[no-untyped-def]
) -> Report:
    """`cycles` rounds of write, kill -9, restart and check on one data dir."""
    rng = random.Random(seed)
    ledger = Ledger()
    checks = 0
    t0 = time.monotonic()
    server = launch(artifacts, data_dir)
    try:
        for cycle in range(cycles):
            checks += check(server, ledger)
            writers = _Writers(server, ledger, cycle, rng)
            target = rng.randint(min_acks, max_acks)
            writers.run_until(target)
            writers.kill_server()
            log(
                f"cycle {cycle + 1}/{cycles}: killed after {target}+ acknowledged writes;"
                f" {ledger.writes()} so far"
            )
            server = launch(artifacts, data_dir)
        checks += check(server, ledger, everything=True)
    finally:
        server.kill()
    leaves = sum(len(a.leaf_hashes) for a in ledger.appends)
    return Report(
        cycles, len(ledger.appends), leaves, len(ledger.campaigns), checks, time.monotonic() - t0
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.integrity.durability", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--cycles", type=int, default=20, help="kill -9 cycles (default 20)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--data-dir", type=Path, default=None, help="default: a temporary dir")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    print(f"seed {seed}")
    with tempfile.TemporaryDirectory(prefix="crm-durability-") as tmp:
        data_dir = args.data_dir or Path(tmp) / "data"
        artifacts = Path(tmp) / "artifacts"
        artifacts.mkdir()
        try:
            report = run(args.cycles, data_dir, artifacts, seed=seed)
        except VerificationError as err:
            print(f"FAILED (seed {seed}): {err}", file=sys.stderr)
            return 1
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())

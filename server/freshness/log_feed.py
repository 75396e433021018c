"""--ingest-integrity-log: lines appended with IntegrityService.AppendTransactions to that log
are ingested too, so a pipeline that already logs its transactions needs no second call.

A logged line's key is (invoice, its 1-based position in the log): the log is append-only and
not idempotent (a retried append adds leaves again), and the features mirror it leaf for leaf.
Lines the log takes but the ingestion rules refuse (no customer_id, quantity 0, a date after
the server's day, ...) stay in the log and out of the features; each is logged with its field.
The append is durable before the lines are ingested: a crash between the two leaves them in the
log only (re-append them, or ingest them with IngestTransactions).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from crm.v1 import common_pb2
from server.errors import FieldViolation, InvalidArgument
from server.freshness.clock import day_end
from server.freshness.ingest import line_problems
from server.freshness.lines import LineConflict
from server.freshness.state import FreshFeatures
from server.integrity.records import log_name

_log = logging.getLogger("crm.freshness")


class LogFeed:
    def __init__(self, fresh: FreshFeatures, log: str) -> None:
        self.fresh = fresh
        try:
            self.log = log_name(log)
        except InvalidArgument as err:
            raise ValueError(f"ingest_integrity_log: {err}") from None

    def __call__(
        self, log: str, lines: Sequence[common_pb2.TransactionLine], first_index: int
    ) -> None:
        """After `lines` were appended to `log` from leaf `first_index` on."""
        if log_name(log) != self.log or self.fresh.snapshot() is None:
            return
        end_ns = day_end(self.fresh.clock.now()) * 1_000_000_000
        now_ns = time.time_ns()
        problems: list[FieldViolation] = []
        kept = []
        for k, line in enumerate(lines):
            stored = line_problems(
                line, line_number=first_index + k + 1, path=f"transactions[{k}]",
                end_ns=end_ns, ingested_at_ns=now_ns, problems=problems,
            )  # fmt: skip
            if stored is not None:
                kept.append(stored)
        for problem in problems[:20]:
            _log.warning(
                "logged line not ingested",
                extra={"log": self.log, "field": problem.field, "why": problem.description},
            )
        if not kept:
            return
        try:
            self.fresh.ingest(kept)
        except LineConflict as err:  # the append stands: its answer must not say otherwise
            _log.error(
                "logged lines not ingested: their keys hold other lines",
                extra={"log": self.log, "positions": [first_index + i + 1 for i in err.indexes]},
            )
        except Exception:  # e.g. the line store is down: the append stands all the same
            _log.exception("logged lines not ingested", extra={"log": self.log})

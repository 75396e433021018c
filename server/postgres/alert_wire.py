"""What replicas tell each other about churn alerts, kept apart from the threads that send it.

NOTIFY payloads are limited to 8000 bytes, so alerts travel as compact ASCII JSON, many to a
payload, split where the next one would not fit:
    {"r": replica, "s": seq, "n": namespace, "a": [[customer_id, request_key, probability,
     risk_level, model, version, scored_at_ns], ...]}
`r` lets a replica skip its own alerts (it delivered them locally), `s` keeps two payloads of one
transaction distinct (PostgreSQL folds identical notifications of a transaction into one).

Which alerts are worth sending is decided by `floors`: per namespace and risk level, the least
probability some subscription elsewhere takes (an alert passes a subscription when its
probability and its level both reach the subscription's minimums).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from server.dataplane.alerts import Alert

MAX_PAYLOAD_BYTES = 7900  # PostgreSQL's limit is 8000; the header is counted, keep some slack
LEVELS = 5  # RiskLevel values 0..4 index a floor array
_SEQ_DIGITS = 20  # room kept in the header for any sequence number


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True)


def _row(alert: Alert) -> str:
    return _dumps(
        [
            alert.customer_id, alert.request_key, alert.probability, alert.risk_level,
            alert.model_name, alert.model_version, alert.scored_at_ns,
        ]
    )  # fmt: skip


def _header(replica: str, seq: int, namespace: str) -> str:
    return f'{{"r":{_dumps(replica)},"s":{seq},"n":{_dumps(namespace)},"a":['


def encode(
    replica: str, first_seq: int, items: Iterable[tuple[str, Alert]]
) -> tuple[list[str], int]:
    """Payloads for (namespace, alert) items in order, and how many alerts were too large to
    travel at all (ids and keys may be 4 KiB each). Sequence numbers run from `first_seq`."""
    payloads: list[str] = []
    too_large = 0
    namespace: str | None = None
    rows: list[str] = []
    size = 0

    def flush() -> None:
        nonlocal rows, size
        if rows and namespace is not None:
            header = _header(replica, first_seq + len(payloads), namespace)
            payloads.append(header + ",".join(rows) + "]}")
        rows, size = [], 0

    for ns, alert in items:
        row = _row(alert)
        budget = MAX_PAYLOAD_BYTES - len(_header(replica, 0, ns)) - _SEQ_DIGITS - 2
        if len(row) > budget:
            too_large += 1
            continue
        if ns != namespace or size + len(row) + 1 > budget:
            flush()
            namespace = ns
        rows.append(row)
        size += len(row) + 1
    flush()
    return payloads, too_large


@dataclass(frozen=True)
class Payload:
    replica: str
    namespace: str
    alerts: list[Alert]


def decode(text: str) -> Payload:
    """One payload back into alerts; ValueError (or KeyError, TypeError) when malformed."""
    data = json.loads(text)
    alerts = [
        Alert(str(c), str(k), float(p), int(lv), str(m), int(v), int(t))
        for c, k, p, lv, m, v, t in data["a"]
    ]
    return Payload(str(data["r"]), str(data["n"]), alerts)


def floors(subscriptions: Iterable[tuple[str, float, int]]) -> dict[str, np.ndarray]:
    """Per namespace, the least probability taken at each risk level (inf: nobody takes it),
    from (namespace, min_probability, min_level) rows: an alert is wanted somewhere iff
    `probability >= floor[level]`."""
    out: dict[str, np.ndarray] = {}
    for namespace, min_probability, min_level in subscriptions:
        floor = out.setdefault(namespace, np.full(LEVELS, np.inf))
        level = max(0, min(int(min_level), LEVELS - 1))
        floor[level:] = np.minimum(floor[level:], float(min_probability))
    return out


def wanted(floor: np.ndarray, probabilities: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Indices of the rows some subscription elsewhere takes."""
    return np.flatnonzero(probabilities >= floor[np.clip(levels, 0, LEVELS - 1)])

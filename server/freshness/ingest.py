"""IngestTransactions' input rules: crm.v1.IngestLine messages -> StoredLine, every problem
reported as a field violation naming the line and field (the whole batch is then refused)."""

from __future__ import annotations

from collections.abc import Sequence

from crm.v1 import common_pb2, transactions_pb2
from server.errors import MAX_VIOLATIONS, FieldViolation, InvalidArgument
from server.freshness.clock import day_end
from server.freshness.lines import LineConflict, StoredLine
from server.limits import required_timestamp_violation
from server.line_checks import check_line_values

MAX_TEXT = 256  # characters in any text column of a line


def _text(value: str, path: str, required: bool, problems: list[FieldViolation]) -> str:
    text = value.strip()
    if required and not text:
        problems.append(FieldViolation(path, "required"))
    elif len(text) > MAX_TEXT:
        problems.append(FieldViolation(path, f"at most {MAX_TEXT} characters"))
    return text


def line_problems(
    line: common_pb2.TransactionLine,
    *,
    line_number: int,
    path: str,
    end_ns: int,
    ingested_at_ns: int,
    problems: list[FieldViolation],
) -> StoredLine | None:
    """One line under the ingestion rules: the line to store, or None with its problems added
    (fields named under `path`, e.g. `lines[3].line`)."""
    before = len(problems)
    invoice = _text(line.invoice, f"{path}.invoice", True, problems)
    customer = _text(line.customer_id, f"{path}.customer_id", True, problems)
    stock = _text(line.stock_code, f"{path}.stock_code", True, problems)
    texts = [
        _text(getattr(line, name), f"{path}.{name}", False, problems)
        for name in ("description", "country", "category")
    ]
    if bad := required_timestamp_violation(line, "invoice_date", path):
        problems.append(bad)
    elif line.invoice_date.ToNanoseconds() >= end_ns:
        problems.append(
            FieldViolation(f"{path}.invoice_date", "after the end of the server's current day")
        )
    check_line_values(line, path, problems)
    if len(problems) > before:
        return None
    return StoredLine(
        invoice, line_number, stock, texts[0], float(line.quantity),
        line.invoice_date.ToNanoseconds(), float(line.price), customer, texts[1], texts[2],
        ingested_at_ns,
    )  # fmt: skip


def stored_lines(
    lines: Sequence[transactions_pb2.IngestLine], max_rows: int, now_s: float, ingested_at_ns: int
) -> list[StoredLine]:
    """The batch as lines to store; InvalidArgument listing every bad field."""
    if not lines:
        raise InvalidArgument.field("lines", "at least one line is required")
    if len(lines) > max_rows:
        raise InvalidArgument.field(
            "lines", f"{len(lines)} lines exceed the limit of {max_rows} per call"
        )
    end_ns = day_end(now_s) * 1_000_000_000
    problems: list[FieldViolation] = []
    out: list[StoredLine] = []
    for i, item in enumerate(lines):
        if len(problems) >= MAX_VIOLATIONS:
            break
        if not item.HasField("line"):
            problems.append(FieldViolation(f"lines[{i}].line", "required"))
            continue
        if item.line_number < 1:
            problems.append(FieldViolation(f"lines[{i}].line_number", "must be >= 1"))
        line = line_problems(
            item.line, line_number=item.line_number, path=f"lines[{i}].line", end_ns=end_ns,
            ingested_at_ns=ingested_at_ns, problems=problems,
        )  # fmt: skip
        if line is not None and item.line_number >= 1:
            out.append(line)
    if problems:
        raise InvalidArgument(problems)
    return out


def conflict_error(err: LineConflict) -> InvalidArgument:
    return InvalidArgument(
        [
            FieldViolation(
                f"lines[{i}].line_number",
                "this (invoice, line_number) was already ingested with other content",
            )
            for i in err.indexes[:MAX_VIOLATIONS]
        ]
    )


def to_message(line: StoredLine) -> transactions_pb2.IngestLine:
    out = transactions_pb2.IngestLine(line_number=line.line_number)
    m = out.line
    m.invoice, m.stock_code, m.description = line.invoice, line.stock_code, line.description
    m.quantity, m.price, m.customer_id = line.quantity, line.price, line.customer_id
    m.country, m.category = line.country, line.category
    m.invoice_date.FromNanoseconds(line.invoice_date_ns)
    return out

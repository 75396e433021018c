"""A client's transaction line, its quantity and price, under `crm.line_rules`: one check for
every place the server reads lines from a client (raw histories to score, lines to ingest,
invoice lines to price), so each names the same fields with the same rule text."""

from __future__ import annotations

from crm.line_rules import (
    PRICE_RULE,
    QUANTITY_RULE,
    SALE_PRICE_RULE,
    SALE_QUANTITY_RULE,
    bad_history_price,
    bad_history_quantity,
    bad_sale_price,
    bad_sale_quantity,
)
from crm.v1 import common_pb2
from server.errors import FieldViolation


def check_line_values(
    line: common_pb2.TransactionLine,
    path: str,
    problems: list[FieldViolation],
    *,
    sale: bool = False,
) -> None:
    """Add to `problems` what breaks the history-line rule (or, with `sale`, the narrower
    sale-line rule) in `line`'s quantity and price, named `{path}.quantity` / `{path}.price`."""
    if bad_sale_quantity(line.quantity) if sale else bad_history_quantity(line.quantity):
        problems.append(
            FieldViolation(f"{path}.quantity", SALE_QUANTITY_RULE if sale else QUANTITY_RULE)
        )
    if bad_sale_price(line.price) if sale else bad_history_price(line.price):
        problems.append(FieldViolation(f"{path}.price", SALE_PRICE_RULE if sale else PRICE_RULE))

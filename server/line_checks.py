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

# (quantity check, its rule, price check, its rule): a history line may be a return or free;
# a sale line to price is neither.
_HISTORY = (bad_history_quantity, QUANTITY_RULE, bad_history_price, PRICE_RULE)
_SALE = (bad_sale_quantity, SALE_QUANTITY_RULE, bad_sale_price, SALE_PRICE_RULE)


def check_line_values(
    line: common_pb2.TransactionLine,
    path: str,
    problems: list[FieldViolation],
    *,
    sale: bool = False,
) -> None:
    """Add to `problems` what breaks the history-line rule (or, with `sale`, the narrower
    sale-line rule) in `line`'s quantity and price, named `{path}.quantity` / `{path}.price`."""
    bad_quantity, quantity_rule, bad_price, price_rule = _SALE if sale else _HISTORY
    if bad_quantity(line.quantity):
        problems.append(FieldViolation(f"{path}.quantity", quantity_rule))
    if bad_price(line.price):
        problems.append(FieldViolation(f"{path}.price", price_rule))

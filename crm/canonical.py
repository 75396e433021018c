"""Canonical byte encoding of one transaction line, so the same row always gives the same leaf.

Encoding (version 1): the UTF-8 bytes of a compact JSON array of eight strings, in the Online
Retail II column order `Invoice, StockCode, Description, Quantity, InvoiceDate, Price,
Customer ID, Country`, serialised with `json.dumps(fields, ensure_ascii=False,
separators=(",", ":"))` (JSON string escaping handles quotes, backslashes and control
characters). Each field is normalised first:

- text fields: Unicode NFC, surrounding whitespace stripped;
- Quantity and Price: plain decimal, no exponent, no trailing zeros, no "+", "-0" -> "0"
  ("2.50" -> "2.5", "6.0" -> "6", "1e3" -> "1000");
- InvoiceDate: `YYYY-MM-DDTHH:MM:SS` (seconds precision, no zone; inputs are ISO 8601 with a
  space or "T", or `M/D/YYYY H:MM[:SS]` as in the original spreadsheet export);
- Customer ID: an integral number loses its fraction ("13085.0" -> "13085"); empty stays "".
Numbers with a decimal exponent beyond +/-400 (MAX_EXPONENT) are refused for Quantity and Price
and kept as text for Customer ID; every other number keeps all its significant digits.
An optional Category column is not part of the leaf: it is derived data, not the transaction.
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import UTC, datetime
from decimal import Context, Decimal, InvalidOperation

from crm.columns import EXPORT_COLUMNS, INVOICE_DATE, PRICE, QUANTITY

# Numbers whose decimal exponent is beyond this are refused (Quantity, Price) or kept as text
# (Customer ID): no double is that large or small, and "1e999999999" must not expand into a
# billion digits or overflow the decimal context.
MAX_EXPONENT = 400

# The accepted date-time shapes, as patterns rather than a strptime loop (each failed strptime
# costs ~12 us, and hashing a dataset encodes every row): ISO 8601 with a space or "T" and
# optional seconds or no time at all, and the spreadsheet export's M/D/YYYY H:MM[:SS].
# Anything else goes to datetime.fromisoformat (fractions of a second, offsets).
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2}))?)?")
_US_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4}) (\d{1,2}):(\d{1,2})(?::(\d{1,2}))?")


def _parse_datetime(text: str) -> datetime | None:
    match = _ISO_DATE.fullmatch(text)
    if match is not None:
        year, month, day, hour, minute, second = match.groups()
    else:
        match = _US_DATE.fullmatch(text)
        if match is None:
            return None
        month, day, year, hour, minute, second = match.groups()
    try:
        return datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
        )
    except ValueError:
        return None


class CanonicalError(ValueError):
    """A field that cannot be put in canonical form; `field` names the column."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(f"{field}: {reason} ({value!r})")
        self.field = field
        self.value = value


def canonical_text(value: object) -> str:
    return unicodedata.normalize("NFC", "" if value is None else str(value)).strip()


def canonical_number(value: object, field: str = "number") -> str:
    text = canonical_text(value)
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise CanonicalError(field, value, "not a number") from None
    if not number.is_finite():
        raise CanonicalError(field, value, "not a finite number")
    if number == 0:
        return "0"
    if abs(number.adjusted()) > MAX_EXPONENT:
        raise CanonicalError(field, value, f"magnitude beyond 1e+/-{MAX_EXPONENT}")
    # Enough precision that dropping trailing zeros never rounds (the default context keeps 28).
    exact = Context(prec=len(number.as_tuple().digits))
    return format(number.normalize(exact), "f")


def canonical_datetime(value: object, field: str = INVOICE_DATE) -> str:
    if isinstance(value, datetime):
        moment = value
    else:
        text = canonical_text(value)
        if text.endswith("Z"):
            text = text[:-1]
        moment = _parse_datetime(text)
        if moment is None:
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                raise CanonicalError(field, value, "not a date-time") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def canonical_customer_id(value: object) -> str:
    text = canonical_text(value)
    if not text:
        return ""
    try:
        number = Decimal(text)
    except InvalidOperation:
        return text
    if (
        number.is_finite()
        and abs(number.adjusted()) <= MAX_EXPONENT
        and number == number.to_integral_value()
    ):
        return str(int(number))
    return text


def canonical_fields(row: dict[str, object] | tuple | list) -> list[str]:
    """Normalised field texts of a row given as a column dict or a sequence in EXPORT_COLUMNS
    order."""
    values = (
        [row.get(c) for c in EXPORT_COLUMNS]
        if isinstance(row, dict)
        else list(row)[: len(EXPORT_COLUMNS)]
    )
    if len(values) < len(EXPORT_COLUMNS):
        raise CanonicalError(
            "row", row, f"expected {len(EXPORT_COLUMNS)} fields, got {len(values)}"
        )
    invoice, stock, desc, qty, date, price, cust, country = values
    return [
        canonical_text(invoice),
        canonical_text(stock),
        canonical_text(desc),
        canonical_number(qty, QUANTITY),
        canonical_datetime(date),
        canonical_number(price, PRICE),
        canonical_customer_id(cust),
        canonical_text(country),
    ]


def encode_row(row: dict[str, object] | tuple | list) -> bytes:
    """The canonical leaf bytes of one transaction line."""
    return json.dumps(canonical_fields(row), ensure_ascii=False, separators=(",", ":")).encode()

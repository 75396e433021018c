"""Contract limits on what a client may send, defined once (the README's Limits table quotes
them): text length per string field, the range of every timestamp, and how much of a client's
value an error message may echo.

Fixed by the API, not by configuration: a client written against one server must not be
refused by another. Limits a deployment sizes (rows per call, stored bytes, open streams)
live in `server.config` instead.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf import timestamp_pb2

from server.errors import FieldViolation

# Any string field of any request, in characters (ids, names, codes, keys, map keys). Big
# enough for any id or free-text line; small enough that text work and echoes stay cheap, and
# a request body no longer than this (a single customer with 40 named features is ~1 kB) needs
# no check at all (`server.transport.decoding`).
MAX_TEXT_CHARS = 4_096
# Free-text fields that carry whole messages: (message full name, field name) -> characters.
TEXT_LIMIT_OVERRIDES: dict[tuple[str, str], int] = {
    ("crm.v1.MessageDraft", "body"): 16_384,
    ("crm.v1.SaveCampaignRequest", "notes"): 16_384,
}

# One rule for every google.protobuf.Timestamp a client sends: nanos within a second, and a
# date from 1900-01-01 up to (not including) 2200-01-01 UTC. Both ends fit every component
# that handles time (pandas' nanosecond timestamps end in 2262), so a timestamp that passes
# this check never fails later.
TIMESTAMP_MIN = datetime(1900, 1, 1, tzinfo=UTC)
TIMESTAMP_MAX = datetime(2200, 1, 1, tzinfo=UTC)
_MIN_SECONDS = int(TIMESTAMP_MIN.timestamp())
_MAX_SECONDS = int(TIMESTAMP_MAX.timestamp())
TIMESTAMP_RULE = "must be from 1900-01-01T00:00:00Z up to 2200-01-01T00:00:00Z, nanos 0..999999999"


def timestamp_violation(ts: timestamp_pb2.Timestamp, field: str) -> FieldViolation | None:
    """The violation of the API's timestamp rule by `ts`, or None when it is valid."""
    if not 0 <= ts.nanos < 1_000_000_000 or not _MIN_SECONDS <= ts.seconds < _MAX_SECONDS:
        return FieldViolation(field, TIMESTAMP_RULE)
    return None


def required_timestamp_violation(message: Any, name: str, path: str) -> FieldViolation | None:
    """The violation of `path.name`, a Timestamp field of `message` that must be set and follow
    the timestamp rule; None when it does."""
    field = f"{path}.{name}"
    if not message.HasField(name):
        return FieldViolation(field, "required")
    return timestamp_violation(getattr(message, name), field)

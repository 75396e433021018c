"""Request bodies to messages, answered INVALID_ARGUMENT when they are not what the API takes.

grpc's own deserialization turns a body that does not parse into INTERNAL ("Exception
deserializing request!"): a client's mistake reported as the server's. The decoding stage
(`server.interceptors.decoding`) registers handlers without a deserializer and decodes here
instead, so a garbage, truncated or bit-flipped body is a BadRequest naming the message, and a
string longer than its limit (`server.limits`) is a BadRequest naming the field, before any
handler sees it. A client stream's messages are decoded one by one, the first bad one failing
the call with its index (`requests[3]`).

The text walk costs nothing on small calls: a body no longer than the smallest limit cannot
hold a longer string, so only larger bodies are walked.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

from server.errors import FieldViolation, InvalidArgument
from server.limits import MAX_TEXT_CHARS, TEXT_LIMIT_OVERRIDES

MAX_TEXT_VIOLATIONS = 20
_SMALLEST_LIMIT = min(MAX_TEXT_CHARS, *TEXT_LIMIT_OVERRIDES.values())
_STRING = FieldDescriptor.TYPE_STRING
_MESSAGE = FieldDescriptor.TYPE_MESSAGE
Decoder = Callable[..., Any]  # (body, field="request") -> message


def _text_limit(descriptor: Descriptor, field: FieldDescriptor) -> int:
    return TEXT_LIMIT_OVERRIDES.get((descriptor.full_name, field.name), MAX_TEXT_CHARS)


@functools.cache
def _has_text(descriptor: Descriptor) -> bool:
    """Whether a message of this type can hold a string anywhere (types seen are assumed not
    to, which ends recursion through self-referencing types such as google.protobuf.Value)."""
    _has_text_seen.add(descriptor.full_name)
    for field in descriptor.fields:
        if field.type == _STRING:
            return True
        if (
            field.type == _MESSAGE
            and field.message_type.full_name not in _has_text_seen
            and _has_text(field.message_type)
        ):
            return True
    return False


_has_text_seen: set[str] = set()


def text_violations(message: Message, path: str, out: list[FieldViolation]) -> None:
    """Append a violation for every string in `message` longer than its field's limit."""
    descriptor = message.DESCRIPTOR
    for field in descriptor.fields:
        if len(out) >= MAX_TEXT_VIOLATIONS:
            return
        name = f"{path}.{field.name}" if path else field.name
        if field.type == _STRING:
            limit = _text_limit(descriptor, field)
            if field.is_repeated:
                texts = getattr(message, field.name)
                if texts and max(map(len, texts)) > limit:  # one C pass in the common case
                    out.extend(
                        _too_long(f"{name}[{i}]", len(text), limit)
                        for i, text in enumerate(texts)
                        if len(text) > limit
                    )
            elif len(text := getattr(message, field.name)) > limit:
                out.append(_too_long(name, len(text), limit))
        elif field.type == _MESSAGE and _has_text(field.message_type):
            if field.message_type.GetOptions().map_entry:
                _map_violations(field, getattr(message, field.name), name, out)
            elif field.is_repeated:
                # A message no bigger than the smallest limit cannot hold a longer string:
                # ByteSize (C) spares the walk of every short item of a big batch.
                for i, item in enumerate(getattr(message, field.name)):
                    if item.ByteSize() > _SMALLEST_LIMIT:
                        text_violations(item, f"{name}[{i}]", out)
            elif message.HasField(field.name):
                item = getattr(message, field.name)
                if item.ByteSize() > _SMALLEST_LIMIT:
                    text_violations(item, name, out)


def _map_violations(
    field: FieldDescriptor, entries: Any, name: str, out: list[FieldViolation]
) -> None:
    entry = field.message_type
    key_is_text = entry.fields_by_name["key"].type == _STRING
    value_field = entry.fields_by_name["value"]
    for key, value in entries.items():
        shown = str(key)[:40]
        if key_is_text and len(key) > MAX_TEXT_CHARS:
            out.append(_too_long(f"{name}[key {len(key)} chars]", len(key), MAX_TEXT_CHARS))
        elif value_field.type == _STRING and len(value) > MAX_TEXT_CHARS:
            out.append(_too_long(f"{name}[{shown!r}]", len(value), MAX_TEXT_CHARS))
        elif value_field.type == _MESSAGE:
            text_violations(value, f"{name}[{shown!r}]", out)


def _too_long(field: str, length: int, limit: int) -> FieldViolation:
    return FieldViolation(field, f"at most {limit} characters (got {length})")


def decoder(parse: Callable[[bytes], Message]) -> Decoder:
    """A decoder from grpc's deserializer (a message class's FromString)."""
    cls = getattr(parse, "__self__", None)
    type_name = cls.DESCRIPTOR.full_name if cls is not None else "request"
    walk = cls is not None and _has_text(cls.DESCRIPTOR)

    def decode(body: bytes, field: str = "request") -> Any:
        try:
            message = parse(body)
        except (DecodeError, ValueError, RuntimeError) as err:
            reason = str(err).splitlines()[0][:100] if str(err) else type(err).__name__
            raise InvalidArgument.field(
                field, f"the body is not a valid {type_name} ({reason})"
            ) from None
        if walk and len(body) > _SMALLEST_LIMIT:
            problems: list[FieldViolation] = []
            text_violations(message, "" if field == "request" else field, problems)
            if problems:
                raise InvalidArgument(problems)
        return message

    return decode

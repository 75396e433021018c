"""Request bodies to messages, answered INVALID_ARGUMENT when they are not what the API takes.

grpc's own deserialization turns a body that does not parse into INTERNAL ("Exception
deserializing request!"): a client's mistake reported as the server's. The decoding stage
(`server.transport.interceptors.decoding`) registers handlers without a deserializer and decodes here
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
from dataclasses import dataclass
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


@dataclass(frozen=True)
class _Field:
    """One field of a message type that can hold text, with what checking it takes."""

    name: str
    kind: int  # _TEXT, _TEXTS, _MAP, _MESSAGE, _MESSAGES
    limit: int  # characters (text fields, map keys and string values)
    key_is_text: bool = False
    value_kind: int = 0  # for maps: _TEXT or _MESSAGE or 0 (neither)


_TEXT, _TEXTS, _MAP, _ONE, _MANY = range(1, 6)


@functools.cache
def _plan(descriptor: Descriptor) -> tuple[_Field, ...]:
    """The fields of a type worth visiting, computed once per type: reading descriptors and
    options on every call costs more than the check itself."""
    plan = []
    for field in descriptor.fields:
        limit = TEXT_LIMIT_OVERRIDES.get((descriptor.full_name, field.name), MAX_TEXT_CHARS)
        if field.type == _STRING:
            plan.append(_Field(field.name, _TEXTS if field.is_repeated else _TEXT, limit))
        elif field.type != _MESSAGE or not _has_text(field.message_type):
            continue
        elif field.message_type.GetOptions().map_entry:
            key, value = (field.message_type.fields_by_name[n] for n in ("key", "value"))
            value_kind = {_STRING: _TEXT, _MESSAGE: _ONE}.get(value.type, 0)
            plan.append(_Field(field.name, _MAP, limit, key.type == _STRING, value_kind))
        else:
            plan.append(_Field(field.name, _MANY if field.is_repeated else _ONE, limit))
    return tuple(plan)


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
    """Append a violation for every string in `message` longer than its field's limit.

    A message no bigger than the smallest limit cannot hold a longer string, so items that
    small (ByteSize, in C) are skipped: a big batch of short items costs one C call each."""
    for f in _plan(message.DESCRIPTOR):
        if len(out) >= MAX_TEXT_VIOLATIONS:
            return
        value = getattr(message, f.name)
        name = f"{path}.{f.name}" if path else f.name
        if f.kind == _TEXT:
            if len(value) > f.limit:
                out.append(_too_long(name, len(value), f.limit))
        elif f.kind == _TEXTS:
            if value and max(map(len, value)) > f.limit:  # one C pass in the common case
                out.extend(
                    _too_long(f"{name}[{i}]", len(text), f.limit)
                    for i, text in enumerate(value)
                    if len(text) > f.limit
                )
        elif f.kind == _MAP:
            if value:
                _map_violations(f, value, name, out)
        elif f.kind == _MANY:
            for i, item in enumerate(value):
                if item.ByteSize() > _SMALLEST_LIMIT:
                    text_violations(item, f"{name}[{i}]", out)
        elif message.HasField(f.name) and value.ByteSize() > _SMALLEST_LIMIT:
            text_violations(value, name, out)


def _map_violations(f: _Field, entries: Any, name: str, out: list[FieldViolation]) -> None:
    # The common case in C passes: no key and no string value is too long.
    keys_ok = not f.key_is_text or max(map(len, entries)) <= f.limit
    if f.value_kind == _TEXT:
        if keys_ok and max(map(len, entries.values())) <= f.limit:
            return
    elif keys_ok and f.value_kind != _ONE:
        return
    for key, value in entries.items():
        shown = str(key)[:40]
        if f.key_is_text and len(key) > f.limit:
            out.append(_too_long(f"{name}[key {len(key)} chars]", len(key), f.limit))
        elif f.value_kind == _TEXT and len(value) > f.limit:
            out.append(_too_long(f"{name}[{shown!r}]", len(value), f.limit))
        elif f.value_kind == _ONE:
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

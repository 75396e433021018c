"""Request decoding: a body that does not parse is the client's INVALID_ARGUMENT.

The stage takes the place of grpc's deserializer (which would answer INTERNAL) with
`server.transport.decoding`'s decoder for the method's request type: a bad body, or a string over its
limit, is a BadRequest naming the message or the field before any handler sees it.
"""

from __future__ import annotations

from typing import Any

from server.transport.decoding import decoder
from server.transport.interceptors.chain import Hooks, Method


class Decoding:
    def bind(self, method: Method) -> Hooks:
        return _Decoded(method.handler.request_deserializer or _identity)


class _Decoded(Hooks):
    def __init__(self, parse: Any) -> None:
        self.decode = decoder(parse)


def _identity(body: bytes) -> bytes:
    return body

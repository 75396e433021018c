"""Fuzzes a running server through every RPC its generated descriptors declare.

Each RPC gets (a) raw bodies -- random bytes, truncated and bit-flipped serialized messages,
invalid UTF-8 in a string field -- and (b) well-formed messages built from the request
descriptor with hostile values: NaN, inf, negative and huge numbers, huge and odd strings,
unknown enum values, empty and maximal repeated fields, timestamps outside 0001..9999 and nanos
outside 0..1e9-1, oneofs, unknown fields. Bodies go out as bytes through generic callables, so
the server's own deserializer sees them. Streaming RPCs get their first message or a few and a
half-close; server streams are read up to their first response. Unknown method names go too.

Checks, collected (never stopping at the first): no UNKNOWN or INTERNAL, no UNIMPLEMENTED for a
declared method, every call answered within the bound (a server stream may run into the
client's short deadline: it may never end on its own), no traceback, file path or Python object
repr in an error message, error messages of bounded size, no oversized error metadata, the
server process alive and SERVING afterwards, and its RSS growth bounded.

Generation is hypothesis with an explicit seed per RPC and input kind, so a run is repeatable.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
import queue
import re
import string
import threading
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from google.protobuf import text_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

import crm.v1
from crm.v1 import model_pb2
from inference import open_inference_grpc_pb2 as oip_pb2
from server.transport.reflection import V1_SERVICE
from tests.serverproc import REPO, RunningServer

UNARY_BOUND_S = 10.0  # every unary, client-stream and half-closed bidi call answers within this
STREAM_WAIT_S = 1.0  # server streams: read until the first response or this client deadline
MAX_DETAILS_BYTES = 2048  # an error message longer than this is a violation
# The server's RSS may grow by what the allocator keeps after the largest bodies (the fuzz
# sends strings up to 1 MB and repeated fields past 100,000 items, 4 calls at a time), not by
# what it keeps per call. Measured with the arena cap (server/transport/memory.py): +151 MB
# over 10,000 calls, +210 MB over 30,000 (sublinear: high-water marks, not a per-call leak).
RSS_GROWTH_LIMIT_MB = 256.0
UNKNOWN_METHOD_BYTES = 1024  # RSS growth allowed per call to an unknown method (none is kept)
UNKNOWN_METHOD_PAD = 4000  # most unknown method names are this long: a kept name shows in RSS
PROBE_S = 5.0  # after a call timed out, a health Check must answer within this
TIMEOUTS_BEFORE_GIVING_UP = 2  # per RPC: later cases of an RPC that hung twice are skipped
BAD_CODES = ("UNKNOWN", "INTERNAL")
LARGE_REPEAT = 1_000
MAXIMAL_REPEAT = 100_001  # one above the server's default --max-batch-rows
MAX_BODY_BYTES = 8 * 1024 * 1024
HUGE_STRING_LENGTHS = (20_000, 65_536, 1_000_000)
TIMESTAMP_SECONDS = (
    -62_135_596_801, -62_135_596_800, 253_402_300_799, 253_402_300_800,
    2**63 - 1, -(2**63), 0, 1_700_000_000,
)  # fmt: skip
TIMESTAMP_NANOS = (0, -1, 10**9, 999_999_999, 2**31 - 1, -(2**31))
ODD_STRINGS = (
    "", " ", "x", "-1", "NaN", "inf", "0x10", "1e400", "../../etc/passwd", "\x00", "%s%s%n",
    "{0}{1}", "${HOME}", "' OR '1'='1", "\u202e\u200b", "😀" * 3, "é", "a\nb", "\\",
)  # fmt: skip
ODD_DOUBLES = (
    math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, -0.0, 0.0, -1.0, 1e9, -1e9,
    float(2**53 + 1), 3.4028235e38, 1e-45,
)  # fmt: skip
RAW_KINDS = ("random", "truncated", "bitflip", "bad-utf8")
_HEALTH_SERVICE = "grpc.health.v1.Health"
_REFLECTION_ALPHA = "grpc.reflection.v1alpha.ServerReflection"

_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
_FLOATS = (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)
_LEAKS = (
    (re.compile(r"Traceback"), "a traceback"),
    (re.compile(r'File "'), "a traceback frame"),
    (re.compile(r"\bobject at 0x[0-9a-f]+"), "a Python object repr"),
    (re.compile(r"<class '"), "a Python class repr"),
    (re.compile(r"\.py\b"), "a Python file name"),
)
_PATH = re.compile(r"(?<![\w.])(?:/[\w.-]+){2,}")
_REPEATS = re.compile(r"(.{1,4}?)\1{15,}")
_METHOD_PATH = re.compile(r"/\w+(?:\.\w+)+/\w+")


# ---------------------------------------------------------------------------------------------
# What to fuzz


@dataclass(frozen=True)
class Rpc:
    path: str  # /package.Service/Method
    input: Descriptor
    client_streaming: bool
    server_streaming: bool

    @property
    def kind(self) -> str:
        return {
            (False, False): "unary",
            (True, False): "client_stream",
            (False, True): "server_stream",
            (True, True): "bidi_stream",
        }[(self.client_streaming, self.server_streaming)]

    @property
    def endless(self) -> bool:
        """A server stream may never end on its own (WatchChurnAlerts, health Watch)."""
        return self.server_streaming and not self.client_streaming

    @property
    def short(self) -> str:
        return self.path.lstrip("/").removeprefix("crm.v1.")


def declared_rpcs() -> list[Rpc]:
    """Every method of every service in crm.v1's generated modules, the Open Inference
    Protocol (inference), grpc.health.v1 and server
    reflection (v1alpha, and v1 which the server answers with the same messages)."""
    files = [
        importlib.import_module(f"crm.v1.{m.name}").DESCRIPTOR
        for m in pkgutil.iter_modules(crm.v1.__path__)
        if m.name.endswith("_pb2")
    ]
    files += [oip_pb2.DESCRIPTOR, health_pb2.DESCRIPTOR, reflection_pb2.DESCRIPTOR]
    rpcs = []
    for file in files:
        for service in file.services_by_name.values():
            names = [service.full_name]
            if service.full_name == _REFLECTION_ALPHA:
                names.append(V1_SERVICE)
            for name in names:
                rpcs += [
                    Rpc(f"/{name}/{m.name}", m.input_type, m.client_streaming, m.server_streaming)
                    for m in service.methods
                ]
    return sorted(rpcs, key=lambda r: r.path)


@dataclass(frozen=True)
class Vocabulary:
    """Names the server knows, so hostile values also reach past name validation."""

    feature_sets: tuple[tuple[str, ...], ...] = ()
    words: tuple[str, ...] = ("default", "churn", "spend", "segmentation", "demand")

    @classmethod
    def from_server(cls, channel: grpc.Channel) -> Vocabulary:
        try:
            listed = channel.unary_unary(
                "/crm.v1.ModelService/ListModels",
                response_deserializer=model_pb2.ListModelsResponse.FromString,
            )(b"", timeout=UNARY_BOUND_S)
        except grpc.RpcError:
            return cls()
        sets = tuple(tuple(m.feature_names) for m in listed.models if m.feature_names)
        names = {m.name for m in (*listed.models, *listed.data_artifacts)}
        words = names | {n for s in sets for n in s}
        return cls(sets, tuple(sorted(words | set(cls.words))))


# ---------------------------------------------------------------------------------------------
# Strategies


def _is_map(f: FieldDescriptor) -> bool:
    return f.message_type is not None and f.message_type.GetOptions().map_entry


def _huge_strings() -> st.SearchStrategy[str]:
    return st.builds(
        lambda ch, n: (ch * n)[:n],
        st.sampled_from(["x", "é", "😀", "a b ", "9"]),
        st.sampled_from(HUGE_STRING_LENGTHS),
    )


def _strings(vocab: Vocabulary) -> st.SearchStrategy[str]:
    huge = _huge_strings()
    return st.one_of(
        st.sampled_from(ODD_STRINGS),
        st.sampled_from(vocab.words),
        st.text(max_size=40),
        huge,
    )


def _bytes() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=64),
        st.sampled_from(HUGE_STRING_LENGTHS).map(lambda n: b"\xff" * n),
    )


def _ints(lo: int, hi: int) -> st.SearchStrategy[int]:
    edges = sorted({lo, hi, 0, 1, lo + 1, hi - 1, *(v for v in (-1, -1000) if v >= lo)})
    return st.one_of(
        st.sampled_from(edges), st.integers(max(lo, -1000), 100_000), st.integers(lo, hi)
    )


def _doubles(width: int = 64) -> st.SearchStrategy[float]:
    return st.one_of(
        st.sampled_from(ODD_DOUBLES),
        st.floats(-1e3, 1e6, width=width),
        st.floats(width=width),
    )


def _enums(f: FieldDescriptor) -> st.SearchStrategy[int]:
    known = [v.number for v in f.enum_type.values]
    return st.one_of(
        st.sampled_from(known),
        st.sampled_from([max(known) + 1, -1, 2**31 - 1, -(2**31)]),
        st.integers(-(2**31), 2**31 - 1),
    )


def _timestamps(desc: Descriptor) -> st.SearchStrategy[Message]:
    cls = GetMessageClass(desc)
    return st.builds(
        lambda s, n: cls(seconds=s, nanos=n),
        st.one_of(st.sampled_from(TIMESTAMP_SECONDS), st.integers(-(2**63), 2**63 - 1)),
        st.one_of(st.sampled_from(TIMESTAMP_NANOS), st.integers(0, 999_999_999)),
    )


def _scalar(f: FieldDescriptor, vocab: Vocabulary) -> st.SearchStrategy:
    t = f.type
    if t in _INT_RANGES:
        return _ints(*_INT_RANGES[t])
    if t in _FLOATS:
        return _doubles(32 if t == FieldDescriptor.TYPE_FLOAT else 64)
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t == FieldDescriptor.TYPE_STRING:
        return _strings(vocab)
    if t == FieldDescriptor.TYPE_BYTES:
        return _bytes()
    if t == FieldDescriptor.TYPE_ENUM:
        return _enums(f)
    raise TypeError(f"no strategy for field {f.full_name} of type {t}")


def _benign(f: FieldDescriptor, vocab: Vocabulary) -> st.SearchStrategy:
    """Ordinary values, so that a message with one hostile field gets past validation."""
    t = f.type
    if t in _INT_RANGES:
        return st.integers(1, 100)
    if t in _FLOATS:  # fractions pass both the 0..1 checks and the positive-amount ones
        return st.floats(0.0, 0.5, width=32 if t == FieldDescriptor.TYPE_FLOAT else 64)
    if t == FieldDescriptor.TYPE_STRING:
        return st.sampled_from(vocab.words) | st.text(string.ascii_letters, min_size=1, max_size=12)
    if t == FieldDescriptor.TYPE_BYTES:
        return st.binary(min_size=1, max_size=32)
    if t == FieldDescriptor.TYPE_ENUM:
        known = [v.number for v in f.enum_type.values]
        return st.sampled_from([n for n in known if n] or known)
    return _scalar(f, vocab)


def _mostly(benign: st.SearchStrategy, hostile: st.SearchStrategy) -> st.SearchStrategy:
    """One time in five the hostile value."""
    return st.integers(0, 4).flatmap(lambda i: hostile if i == 0 else benign)


def _count(depth: int) -> st.SearchStrategy[int]:
    """Mostly a few elements; empty; large at the top two levels; maximal at the top."""
    choices = [0, 1, 1, 2, 2, 3, 3]
    if depth <= 1:
        choices.append(LARGE_REPEAT)
    if depth == 0:
        choices.append(MAXIMAL_REPEAT)
    return st.sampled_from(choices)


_UNKNOWN_FIELD = st.builds(
    lambda number, payload: _key(number, 2) + _varint(len(payload)) + payload,
    st.integers(1000, 536_870_911),
    st.binary(max_size=16),
)


def _key(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


class _Builder:
    """Hypothesis strategies for messages of any descriptor, depth-limited."""

    MAX_DEPTH = 5

    def __init__(self, vocab: Vocabulary, mild: bool = False) -> None:
        """`mild`: most values ordinary and most fields set, some hostile, so the hostile
        ones reach the code past validation; else every value is drawn from the hostile set."""
        self.vocab = vocab
        self.mild = mild

    def message(self, desc: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
        if desc.full_name == "google.protobuf.Timestamp":
            if self.mild:
                cls = GetMessageClass(desc)
                ordinary = st.integers(1_262_304_000, 1_735_689_600).map(lambda s: cls(seconds=s))
                return _mostly(ordinary, _timestamps(desc))
            return _timestamps(desc)
        return st.composite(lambda draw: self._fill(draw, desc, depth))()

    def _fill(self, draw: Callable, desc: Descriptor, depth: int) -> Message:
        msg = GetMessageClass(desc)()
        if depth > self.MAX_DEPTH:
            return msg
        chosen = {
            o.name: draw(st.sampled_from([None, *o.fields]))
            for o in desc.oneofs
            if not _synthetic(o)
        }
        for f in desc.fields:
            oneof = f.containing_oneof
            if oneof is not None and not _synthetic(oneof):
                if chosen[oneof.name] is not f:
                    continue
            elif not draw(st.integers(0, 3) if self.mild else st.booleans()):
                continue
            self._set(draw, msg, f, depth)
        return msg

    def _value(self, f: FieldDescriptor, depth: int) -> st.SearchStrategy:
        if f.type == FieldDescriptor.TYPE_MESSAGE:
            return self.message(f.message_type, depth + 1)
        if self.mild:
            hostile = _scalar(f, self.vocab)
            if f.type == FieldDescriptor.TYPE_STRING:  # a long text deep in the code
                hostile = _huge_strings() | hostile
            return _mostly(_benign(f, self.vocab), hostile)
        return _scalar(f, self.vocab)

    def _set(self, draw: Callable, msg: Message, f: FieldDescriptor, depth: int) -> None:
        target = getattr(msg, f.name)
        if _is_map(f):
            self._fill_map(draw, target, f, depth)
        elif f.is_repeated:
            n = draw(_count(depth))
            if n <= 3:
                values = [draw(self._value(f, depth)) for _ in range(n)]
            else:  # many copies of one drawn element, capped to MAX_BODY_BYTES
                one = draw(self._value(f, depth))
                size = one.ByteSize() if isinstance(one, Message) else len(str(one))
                values = [one] * min(n, max(1, MAX_BODY_BYTES // max(1, size)))
            target.extend(values)
        elif f.type == FieldDescriptor.TYPE_MESSAGE:
            target.SetInParent()
            target.MergeFrom(draw(self._value(f, depth)))
        else:
            setattr(msg, f.name, draw(self._value(f, depth)))

    def _fill_map(self, draw: Callable, target: object, f: FieldDescriptor, depth: int) -> None:
        key_f = f.message_type.fields_by_name["key"]
        value_f = f.message_type.fields_by_name["value"]
        string_keys = key_f.type == FieldDescriptor.TYPE_STRING and self.vocab.feature_sets
        if string_keys and draw(st.booleans()):  # every feature of a model, hostile values
            keys = list(draw(st.sampled_from(self.vocab.feature_sets)))
        else:
            keys = draw(st.lists(_scalar(key_f, self.vocab), max_size=3))
        for key in keys:
            value = draw(self._value(value_f, depth))
            if value_f.type == FieldDescriptor.TYPE_MESSAGE:
                target[key].MergeFrom(value)  # type: ignore[index]
            else:
                target[key] = value  # type: ignore[index]


def _synthetic(oneof: object) -> bool:
    """proto3 `optional` wraps a field in a synthetic oneof; it is not a real choice."""
    return bool(getattr(oneof, "is_synthetic", False))


@dataclass(frozen=True)
class Case:
    rpc: Rpc
    kind: str  # "hostile", "sweep", one of RAW_KINDS, "empty" (warm-up) or "unknown-method"
    bodies: tuple[bytes, ...]


def _string_field_number(desc: Descriptor) -> int:
    for f in desc.fields:
        if f.type == FieldDescriptor.TYPE_STRING:
            return f.number
    return 1


def _raw(kind: str, builder: _Builder, rpc: Rpc) -> st.SearchStrategy[bytes]:
    if kind == "random":
        return st.binary(max_size=512)
    valid = builder.message(rpc.input).map(lambda m: m.SerializeToString())
    if kind == "truncated":
        return valid.filter(lambda b: len(b) > 1).flatmap(
            lambda b: st.integers(1, len(b) - 1).map(lambda cut: b[:cut])
        ) | st.just(b"\x0a\x05ab")  # a length prefix longer than what follows
    if kind == "bitflip":

        def flip(body: bytes, bits: list[int]) -> bytes:
            out = bytearray(body or b"\x00")
            for bit in bits:
                out[(bit // 8) % len(out)] ^= 1 << (bit % 8)
            return bytes(out)

        return st.builds(flip, valid, st.lists(st.integers(0, 2**20), min_size=1, max_size=8))
    if kind == "bad-utf8":
        number = _string_field_number(rpc.input)
        bad = st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"ok\xf0\x28\x8c\x28"])
        return st.builds(
            lambda body, junk: body + _key(number, 2) + _varint(len(junk)) + junk, valid, bad
        )
    raise ValueError(kind)


def _hostile(builder: _Builder, rpc: Rpc) -> st.SearchStrategy[bytes]:
    mild = _Builder(builder.vocab, mild=True)
    return st.builds(
        lambda m, extra: m.SerializeToString() + b"".join(extra),
        st.one_of(builder.message(rpc.input), mild.message(rpc.input), mild.message(rpc.input)),
        st.lists(_UNKNOWN_FIELD, max_size=1),
    )


def cases(rpc: Rpc, kind: str, builder: _Builder) -> st.SearchStrategy[Case]:
    body = _hostile(builder, rpc) if kind == "hostile" else _raw(kind, builder, rpc)
    most = 3 if rpc.client_streaming else 1
    return st.lists(body, min_size=1, max_size=most).map(lambda b: Case(rpc, kind, tuple(b)))


# A systematic sweep next to the random draws: one ordinary message per RPC, then each leaf
# field in turn (one level of every oneof too) set to each hostile value of its type.
# The first `Plan.sweep_values` of each tuple are swept (CI takes the first two).
SWEEP_VALUES: dict[str, tuple] = {
    "string": ("x" * 65_536, ""),
    "bytes": (b"\xff" * 65_536,),
    "float": (math.nan, 1e308, -math.inf, -1e308, -1.0),
    "int": ("max", "min", -1),
    "enum": (999_999, -1),
    "timestamp": ((-62_135_596_801, 0), (253_402_300_800, 0), (0, -1), (0, 10**9)),
    "repeated": (MAXIMAL_REPEAT, 0),
}


def _ordinary(desc: Descriptor, vocab: Vocabulary, depth: int = 0) -> Message:
    """A plain, plausible message: every field set once, the first member of each oneof."""
    msg = GetMessageClass(desc)()
    if depth > _Builder.MAX_DEPTH or desc.full_name == "google.protobuf.Timestamp":
        if desc.full_name == "google.protobuf.Timestamp":
            msg.seconds = 1_700_000_000  # type: ignore[attr-defined]
        return msg
    for f in desc.fields:
        oneof = f.containing_oneof
        if oneof is not None and not _synthetic(oneof) and oneof.fields[0] is not f:
            continue
        _set_ordinary(msg, f, vocab, depth)
    return msg


def _set_ordinary(msg: Message, f: FieldDescriptor, vocab: Vocabulary, depth: int) -> None:
    target = getattr(msg, f.name)
    if _is_map(f):
        key_f = f.message_type.fields_by_name["key"]
        value_f = f.message_type.fields_by_name["value"]
        if key_f.type == FieldDescriptor.TYPE_STRING and value_f.type in _FLOATS:
            for name in vocab.feature_sets[0] if vocab.feature_sets else ():
                target[name] = 1.0
        return
    if f.type == FieldDescriptor.TYPE_MESSAGE:
        value = _ordinary(f.message_type, vocab, depth + 1)
        if f.is_repeated:
            target.add().CopyFrom(value)
        else:
            target.SetInParent()
            target.MergeFrom(value)
        return
    value = _plain(f, vocab)
    if f.is_repeated and f.type == FieldDescriptor.TYPE_ENUM:  # e.g. every channel
        target.extend([v.number for v in f.enum_type.values if v.number] or [value])
    elif f.is_repeated:
        target.append(value)
    else:
        setattr(msg, f.name, value)


def _plain(f: FieldDescriptor, vocab: Vocabulary) -> object:
    t = f.type
    if t in _INT_RANGES:
        return 1
    if t in _FLOATS:
        return 0.25
    if t == FieldDescriptor.TYPE_BOOL:
        return True
    if t == FieldDescriptor.TYPE_STRING:
        return vocab.words[0]
    if t == FieldDescriptor.TYPE_BYTES:
        return b"a"
    known = [v.number for v in f.enum_type.values]
    return next((n for n in known if n), known[0])


def _hostile_values(f: FieldDescriptor, most: int) -> tuple:
    return _all_hostile_values(f)[:most]


def _all_hostile_values(f: FieldDescriptor) -> tuple:
    if f.message_type is not None and f.message_type.full_name == "google.protobuf.Timestamp":
        return SWEEP_VALUES["timestamp"]
    t = f.type
    if t in _INT_RANGES:
        lo, hi = _INT_RANGES[t]
        values = [{"min": lo, "max": hi}.get(v, v) for v in SWEEP_VALUES["int"]]
        return tuple(v for v in values if lo <= v <= hi)
    if t in _FLOATS:
        return SWEEP_VALUES["float"]
    if t == FieldDescriptor.TYPE_STRING:
        return SWEEP_VALUES["string"]
    if t == FieldDescriptor.TYPE_BYTES:
        return SWEEP_VALUES["bytes"]
    if t == FieldDescriptor.TYPE_ENUM:
        return SWEEP_VALUES["enum"]
    return ()


def sweep(rpc: Rpc, vocab: Vocabulary, most: int = 99) -> list[Case]:
    """Each leaf of an ordinary request set to each hostile value of its type, one at a time.

    Requests often take one of several inputs (customers or a batch): each top-level message
    field gets an ordinary request of its own with the other top-level messages left out."""
    full = _ordinary(rpc.input, vocab)
    nested = [f for f in rpc.input.fields if f.type == FieldDescriptor.TYPE_MESSAGE]
    focused = []
    for focus in nested or [None]:
        base = type(full)()
        base.CopyFrom(full)
        for f in nested:
            if f is not focus:
                base.ClearField(f.name)
        focused.append((focus, base))
    out = []
    for i, (focus, base) in enumerate(focused):
        out.append(Case(rpc, "sweep", (base.SerializeToString(),)))
        for f in rpc.input.fields:
            if f is focus or (f.type != FieldDescriptor.TYPE_MESSAGE and i == 0):
                swept = _swept(base, f, [], vocab, 0, most=most)
                out += [Case(rpc, "sweep", (b,)) for b in swept]
    return out


def _swept(
    base: Message,
    f: FieldDescriptor,
    path: list[tuple[str, int | None]],
    vocab: Vocabulary,
    depth: int,
    *,
    most: int,
) -> list[bytes]:
    if _is_map(f) or depth > 3:
        return []
    where = [*path, (f.name, 0 if f.is_repeated else None)]
    out = []
    if f.is_repeated:
        counts = SWEEP_VALUES["repeated"][:most]
        out += [_with(base, where, ("repeat", n), vocab) for n in counts]
    ts = f.message_type is not None and f.message_type.full_name == "google.protobuf.Timestamp"
    if f.type == FieldDescriptor.TYPE_MESSAGE and not ts:
        for sub in f.message_type.fields:
            out += _swept(base, sub, where, vocab, depth + 1, most=most)
        return out
    values = _hostile_values(f, most)
    return out + [_with(base, where, ("set", value), vocab) for value in values]


def _with(
    base: Message,
    where: list[tuple[str, int | None]],
    change: tuple[str, object],
    vocab: Vocabulary,
) -> bytes:
    """`base` with the field at `where` changed: ("set", value) or ("repeat", count)."""
    msg = type(base)()
    msg.CopyFrom(base)
    parent = msg
    for name, index in where[:-1]:
        field_ = getattr(parent, name)
        desc = parent.DESCRIPTOR.fields_by_name[name].message_type
        if index is not None:
            if not len(field_):
                field_.add().CopyFrom(_ordinary(desc, vocab))
            parent = field_[index]
        else:
            if not parent.HasField(name):  # another member of a oneof: an ordinary one
                field_.CopyFrom(_ordinary(desc, vocab))
            parent = field_
    name, index = where[-1]
    f = parent.DESCRIPTOR.fields_by_name[name]
    kind, value = change
    if kind == "repeat":
        container = getattr(parent, name)
        if value == 0 or not len(container):
            del container[:]
        else:
            one = container[0]
            if f.type == FieldDescriptor.TYPE_MESSAGE:
                size = max(1, one.ByteSize())
                copies = min(int(value), max(1, MAX_BODY_BYTES // size))
                container.extend([one] * (copies - len(container)))
            else:
                container.extend([one] * (int(value) - len(container)))
        return msg.SerializeToString()
    if f.message_type is not None:  # a Timestamp: (seconds, nanos)
        target = getattr(parent, name)[0] if f.is_repeated else getattr(parent, name)
        target.seconds, target.nanos = value  # type: ignore[misc]
        return msg.SerializeToString()
    if f.is_repeated:
        container = getattr(parent, name)
        if not len(container):
            container.append(value)
        else:
            container[0] = value
    else:
        setattr(parent, name, value)
    return msg.SerializeToString()


def unknown_methods() -> st.SearchStrategy[Case]:
    """Method names no server declares, some of them long (a cache per name would leak)."""
    name = st.text(string.ascii_letters + string.digits, min_size=1, max_size=24)
    pad = st.sampled_from([0, UNKNOWN_METHOD_PAD, UNKNOWN_METHOD_PAD, UNKNOWN_METHOD_PAD])

    def case(service: str, method: str, n: int) -> Case:
        path = f"/crm.v1.Foo{service}/Bar{method}{'x' * n}"
        return Case(
            Rpc(path, model_pb2.ListModelsRequest.DESCRIPTOR, False, False),
            "unknown-method",
            (b"",),
        )

    return st.builds(case, name, name, pad)


def generate(
    strategy: st.SearchStrategy[Case], n: int, seed: int, sink: Callable[[Case], None]
) -> None:
    """Feed `n` examples of `strategy` (fewer if its space is smaller) to `sink`, seeded."""

    @settings(
        max_examples=n,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis_seed(seed)
    @given(strategy)
    def feed(case: Case) -> None:
        sink(case)

    feed()


# ---------------------------------------------------------------------------------------------
# Calls and checks


@dataclass
class Outcome:
    code: str
    details: str
    seconds: float
    trailers_bytes: int = 0


def call(channel: grpc.Channel, case: Case) -> Outcome:
    rpc, bodies = case.rpc, case.bodies
    t0 = time.monotonic()
    try:
        if rpc.kind == "unary":
            channel.unary_unary(rpc.path)(bodies[0], timeout=UNARY_BOUND_S)
        elif rpc.kind == "client_stream":
            channel.stream_unary(rpc.path)(iter(bodies), timeout=UNARY_BOUND_S)
        elif rpc.kind == "bidi_stream":
            for _ in channel.stream_stream(rpc.path)(iter(bodies), timeout=UNARY_BOUND_S):
                pass
        else:
            stream = channel.unary_stream(rpc.path)(bodies[0], timeout=STREAM_WAIT_S)
            for _ in stream:
                stream.cancel()  # the first response is enough: some streams never end
                break
    except grpc.RpcError as err:
        trailers = err.trailing_metadata() or ()  # type: ignore[attr-defined]
        size = sum(len(k) + len(v) for k, v in trailers)
        return Outcome(err.code().name, err.details() or "", time.monotonic() - t0, size)  # type: ignore[attr-defined]
    return Outcome("OK", "", time.monotonic() - t0)


def _echoed(text: str, bodies: Iterable[bytes]) -> bool:
    return any(text.encode() in body for body in bodies)


def check(case: Case, out: Outcome) -> list[str]:
    """What is wrong with one answer (empty if nothing)."""
    problems = []
    rpc, details = case.rpc, out.details
    if out.code in BAD_CODES:
        problems.append(f"status {out.code}")
    if out.code == "UNIMPLEMENTED" and case.kind != "unknown-method":
        problems.append("UNIMPLEMENTED for a method the descriptors declare")
    if out.code == "DEADLINE_EXCEEDED" and not rpc.endless:
        problems.append(f"no answer within {UNARY_BOUND_S:g} s")
    elif out.seconds > UNARY_BOUND_S + 5:
        problems.append(f"answered after {out.seconds:.1f} s")
    if out.code == "RESOURCE_EXHAUSTED" and "metadata" in details.lower():
        problems.append("error metadata too large for the client")
    for pattern, what in _LEAKS:
        if pattern.search(details) and not _echoed(pattern.search(details).group(0), case.bodies):  # type: ignore[union-attr]
            problems.append(f"{what} in the error message")
    for match in _PATH.finditer(details):
        text = match.group(0)
        if not _METHOD_PATH.fullmatch(text) and not _echoed(text, case.bodies):
            problems.append(f"a file path in the error message ({text[:60]})")
            break
    if len(details.encode()) > MAX_DETAILS_BYTES:
        problems.append(f"error message of {len(details.encode())} bytes")
    return problems


def summarize(case: Case) -> str:
    """A short, readable account of a case's first body."""
    body = case.bodies[0]
    more = f" (+{len(case.bodies) - 1} more messages)" if len(case.bodies) > 1 else ""
    if case.kind == "unknown-method":
        return f"path of {len(case.rpc.path)} chars"
    head = f"{len(body)} bytes"
    if case.kind not in ("hostile", "sweep"):
        return f"{head}: {body[:40].hex()}{'…' if len(body) > 40 else ''}{more}"
    try:
        msg = GetMessageClass(case.rpc.input).FromString(body)
    except DecodeError:
        return head + more
    counts = [f"{f.name} x{len(v)}" for f, v in msg.ListFields() if f.is_repeated and len(v) > 3]
    if counts:
        head += f" ({', '.join(counts)})"
    _trim(msg)
    text = text_format.MessageToString(msg, as_one_line=True)
    text = _REPEATS.sub(lambda m: f"{m.group(1)}…(x{len(m.group(0)) // len(m.group(1))})", text)
    return f"{head}: {text[:400]}{'…' if len(text) > 400 else ''}{more}"


def _short(value: str | bytes) -> str | bytes:
    if len(value) <= 40:
        return value
    return value[:12] + (f"…<{len(value)} chars>" if isinstance(value, str) else b"...")


def _trim(msg: Message) -> None:
    """Keep three elements of each repeated field and 40 characters of each string."""
    for f, value in msg.ListFields():
        if _is_map(f):
            continue
        if f.is_repeated and len(value) > 3:
            del value[3:]
        if f.type == FieldDescriptor.TYPE_MESSAGE:
            for item in value if f.is_repeated else [value]:
                _trim(item)
        elif f.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES):
            if f.is_repeated:
                short = [_short(v) for v in value]
                del value[:]
                value.extend(short)
            else:
                setattr(msg, f.name, _short(value))


# ---------------------------------------------------------------------------------------------
# The run and its report


@dataclass
class Violation:
    rpc: str
    kind: str
    code: str
    problem: str
    details: str
    example: str


@dataclass
class Report:
    codes: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    slowest: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    violations: list[Violation] = field(default_factory=list)
    calls: int = 0
    rpc_calls: int = 0  # calls to declared RPCs with fuzzed bodies (no warm-up, no unknown names)
    skipped: Counter = field(default_factory=Counter)
    hung: Counter = field(default_factory=Counter)  # unanswered calls per RPC
    rss_mb: dict[str, float] = field(default_factory=dict)
    rss_growth_mb: float = 0.0  # the most any one server grew from its warmed-up RSS
    rss_steps_mb: Counter = field(default_factory=Counter)  # growth while fuzzing each RPC
    restarts: int = 0
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, case: Case, out: Outcome) -> None:
        problems = check(case, out)
        key = "(unknown methods)" if case.kind == "unknown-method" else case.rpc.short
        summary = summarize(case) if problems else ""
        with self._lock:
            self.calls += 1
            self.rpc_calls += case.kind not in ("empty", "unknown-method")
            self.hung[key] += out.code == "DEADLINE_EXCEEDED" and not case.rpc.endless
            self.codes[key][out.code] += 1
            self.slowest[key] = max(self.slowest[key], out.seconds)
            self.violations += [
                Violation(key, case.kind, out.code, p, out.details, summary) for p in problems
            ]

    def add(self, rpc: str, problem: str, details: str = "") -> None:
        with self._lock:
            self.violations.append(Violation(rpc, "-", "-", problem, details, ""))

    def count(self, code: str) -> int:
        return sum(c[code] for c in self.codes.values())

    def table(self) -> str:
        """RPC x status code counts, the slowest answer per RPC, and violations per RPC."""
        codes = sorted({c for counts in self.codes.values() for c in counts}, key=_code_order)
        bad = Counter(v.rpc for v in self.violations)
        width = max([len("RPC"), *map(len, self.codes)]) + 2
        head = "RPC".ljust(width) + "".join(f"{c:>{max(len(c), 5) + 1}}" for c in codes)
        lines = [head + f"{'max s':>8}{'viol':>6}", "-" * (len(head) + 14)]
        for key in sorted(self.codes):
            row = key.ljust(width) + "".join(
                f"{self.codes[key][c] or '.':>{max(len(c), 5) + 1}}" for c in codes
            )
            lines.append(row + f"{self.slowest[key]:>8.2f}{bad[key] or '.':>6}")
        return "\n".join(lines)

    def totals(self) -> str:
        rss = self.rss_mb
        return (
            f"TOTAL calls={self.calls} (fuzzed RPC calls {self.rpc_calls}) INTERNAL={self.count('INTERNAL')} "
            f"UNKNOWN={self.count('UNKNOWN')} violations={len(self.violations)} "
            f"skipped={sum(self.skipped.values())} server_restarts={self.restarts} "
            f"rss_mb={rss.get('start', 0):.0f}->{rss.get('end', 0):.0f} "
            f"max_growth_mb={self.rss_growth_mb:.0f} "
            f"unknown_methods_growth_mb={rss.get('unknown methods', 0):.1f} "
            f"seconds={self.seconds:.1f}"
        )

    def violations_text(self, examples: int = 2) -> str:
        """Violations grouped by RPC, then by (problem, input kind, status, message)."""
        groups: dict[str, dict[tuple, list[Violation]]] = defaultdict(lambda: defaultdict(list))
        for v in self.violations:
            details = re.sub(r"\d+", "N", _clip(v.details, 160)) if v.kind != "-" else v.details
            groups[v.rpc][(v.problem, v.kind, v.code, details)].append(v)
        lines = []
        for rpc in sorted(groups):
            lines.append(f"{rpc}:")
            for (problem, kind, code, details), vs in sorted(
                groups[rpc].items(), key=lambda kv: -len(kv[1])
            ):
                lines.append(f"  {len(vs)}x {problem} [input {kind}, status {code}] {details!r}")
                distinct = list(dict.fromkeys(v.example for v in vs if v.example))
                lines += [f"      e.g. {example}" for example in distinct[:examples]]
        return "\n".join(lines)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else f"{text[:n]}…<{len(text)} chars>"


_ORDER = ("OK", "INVALID_ARGUMENT", "NOT_FOUND", "FAILED_PRECONDITION", "OUT_OF_RANGE")


def _code_order(code: str) -> tuple[int, str]:
    return (_ORDER.index(code) if code in _ORDER else len(_ORDER), code)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass(frozen=True)
class Plan:
    """How much to fuzz: examples per RPC and input kind, unknown method names, threads."""

    per_rpc_kind: int
    unknown_methods: int
    seed: int = 16
    workers: int = 4
    min_calls: int = 0  # top up with further seeded rounds until at least this many calls
    only: tuple[str, ...] = ()  # fuzz only RPCs whose path contains one of these
    sweep_values: int = 99  # the sweep sets each leaf to this many hostile values of its type
    # A bearer token every call carries (a server with authentication on); never printed.
    token: str = field(default="", repr=False)


class _Bearer(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds `authorization: Bearer <token>` to every call of every kind."""

    def __init__(self, token: str) -> None:
        self._metadata = ("authorization", f"Bearer {token}")

    def _with_token(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        return _CallDetails(
            details.method,
            details.timeout,
            [*(details.metadata or ()), self._metadata],
            details.credentials,
            details.wait_for_ready,
            details.compression,
        )

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._with_token(details), request)

    intercept_unary_stream = intercept_unary_unary
    intercept_stream_unary = intercept_unary_unary
    intercept_stream_stream = intercept_unary_unary


@dataclass(frozen=True)
class _CallDetails(grpc.ClientCallDetails):
    method: str
    timeout: float | None
    metadata: list | None
    credentials: object
    wait_for_ready: bool | None
    compression: object


class _Run:
    """One fuzz run: worker threads calling the current server, which is replaced by a fresh
    one (and the event recorded as a violation) if it exits or stops answering, so the RPCs
    after it are still fuzzed."""

    def __init__(
        self, launch: Callable[[], RunningServer], plan: Plan, progress: Callable[[str], None]
    ) -> None:
        self.launch, self.plan, self.progress = launch, plan, progress
        self.report = Report()
        self.rpcs = [
            r for r in declared_rpcs() if not plan.only or any(o in r.path for o in plan.only)
        ]
        self.broken = threading.Event()
        self.work: queue.Queue[Case | None] = queue.Queue(maxsize=plan.workers * 2)
        self.threads: list[threading.Thread] = []
        self.server: RunningServer | None = None
        self.channel: grpc.Channel | None = None
        self.rss_base = self.rss_last = 0.0

    def connect(self, server: RunningServer) -> None:
        self.server = server
        self.channel = grpc.insecure_channel(
            server.target, options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        )
        if self.plan.token:
            self.channel = grpc.intercept_channel(self.channel, _Bearer(self.plan.token))
        self.broken.clear()
        self.start()
        for rpc in self.rpcs:  # warm-up: every RPC once with an empty message
            self.sink(Case(rpc, "empty", (b"",)))
        self.drain()
        self.rss_base = self.rss_last = rss_mb(server.proc.pid)
        self.report.rss_mb.setdefault("start", self.rss_base)
        self.start()

    def start(self) -> None:
        self.threads = [
            threading.Thread(target=self.worker, daemon=True) for _ in range(self.plan.workers)
        ]
        for t in self.threads:
            t.start()

    def drain(self) -> None:
        """Wait until every queued case has been answered (or dropped: the server broke)."""
        for _ in self.threads:
            self.work.put(None)
        for t in self.threads:
            t.join()

    def worker(self) -> None:
        while (case := self.work.get()) is not None:
            if self.broken.is_set():
                continue
            try:
                out = call(self.channel, case)  # type: ignore[arg-type]
                self.report.record(case, out)
                if out.code in ("DEADLINE_EXCEEDED", "UNAVAILABLE"):
                    self.probe(case)
            except Exception as exc:  # a harness bug must not hang the queue
                self.report.add(
                    case.rpc.short, f"harness error {type(exc).__name__}", str(exc)[:300]
                )

    def probe(self, case: Case) -> None:
        """After a call that timed out: is the server still alive and answering?"""
        assert self.server is not None and self.channel is not None
        problem = ""
        if (code := self.server.proc.poll()) is not None:
            tail = "\n".join(self.server.lines[-10:]).replace(str(REPO), "<repo>")
            problem, details = f"server process exited with {code}", tail
        else:
            try:
                self.channel.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=PROBE_S)
            except grpc.RpcError as err:
                code_name = err.code().name  # type: ignore[attr-defined]
                problem = (
                    f"server stopped answering: a health Check got {code_name} within {PROBE_S:g} s"
                )
                details = ""
        if problem and not self.broken.is_set():
            self.broken.set()
            after = "by the end of its cases" if case.kind == "checkpoint" else summarize(case)
            self.report.add(case.rpc.short, f"{problem}, after: {after}", details)

    def sink(self, case: Case) -> None:
        key = case.rpc.short
        gave_up = (
            case.kind != "unknown-method" and self.report.hung[key] >= TIMEOUTS_BEFORE_GIVING_UP
        )
        if self.broken.is_set() or gave_up:
            self.report.skipped[key] += 1
        else:
            self.work.put(case)

    def recover(self) -> None:
        """If the server broke: record its RSS growth, replace it by a fresh one."""
        if not self.broken.is_set():
            return
        self.drain()
        self.finish_server()
        self.report.restarts += 1
        self.connect(self.launch())

    def finish_server(self) -> None:
        assert self.server is not None and self.channel is not None
        if self.server.proc.poll() is None:
            growth = rss_mb(self.server.proc.pid) - self.rss_base
            self.report.rss_growth_mb = max(self.report.rss_growth_mb, growth)
        self.channel.close()
        self.server.kill()

    def note_rss(self, rpc: Rpc) -> None:
        """RSS growth while `rpc` was fuzzed (roughly: a few cases may still be queued)."""
        assert self.server is not None
        if self.server.proc.poll() is None:
            now = rss_mb(self.server.proc.pid)
            self.report.rss_steps_mb[rpc.short] += now - self.rss_last
            self.rss_last = now

    def unknown_methods(self) -> None:
        """Calls to made-up method names; the server's RSS must not keep them."""
        assert self.server is not None
        plan, report = self.plan, self.report
        before = rss_mb(self.server.proc.pid)
        generate(unknown_methods(), plan.unknown_methods, plan.seed, self.sink)
        self.drain()
        if self.server.proc.poll() is None:
            growth = report.rss_mb["unknown methods"] = rss_mb(self.server.proc.pid) - before
            limit = max(2.0, plan.unknown_methods * UNKNOWN_METHOD_BYTES / 2**20)
            if growth > limit:
                report.add(
                    "(unknown methods)",
                    f"RSS grew {growth:.1f} MB over {plan.unknown_methods} calls to unknown "
                    f"methods, most of them {UNKNOWN_METHOD_PAD} characters long "
                    f"(limit {limit:.1f} MB)",
                )
        self.rss_last = rss_mb(self.server.proc.pid)
        self.start()

    def checkpoint(self, rpc: Rpc) -> None:
        """Between RPCs: every case answered and the server still answering; if it is not,
        `rpc` is blamed and the server replaced."""
        self.drain()
        if not self.broken.is_set():
            self.probe(Case(rpc, "checkpoint", (b"",)))
        if self.broken.is_set():
            self.finish_server()
            self.report.restarts += 1
            self.connect(self.launch())
        else:
            self.start()

    def run(self) -> Report:
        t0 = time.monotonic()
        plan, report = self.plan, self.report
        self.connect(self.launch())
        self.unknown_methods()  # first, while the heap is compact: a kept name shows in RSS
        vocab = Vocabulary.from_server(self.channel)  # type: ignore[arg-type]
        builder = _Builder(vocab)
        for rpc in self.rpcs:
            for case in sweep(rpc, vocab, plan.sweep_values):
                self.sink(case)
            self.checkpoint(rpc)
            self.progress(f"{rpc.short}: swept, {report.calls} calls so far")
        rounds, per = 0, plan.per_rpc_kind
        while True:
            for rpc in self.rpcs:
                for kind in ("hostile", *RAW_KINDS):
                    n = per if kind == "hostile" else max(1, per // 2)
                    seed = zlib.crc32(f"{plan.seed}:{rounds}:{rpc.path}:{kind}".encode())
                    generate(cases(rpc, kind, builder), n, seed, self.sink)
                    self.recover()
                self.checkpoint(rpc)
                self.note_rss(rpc)
                self.progress(f"{rpc.short}: {report.calls} calls so far")
            rounds += 1
            missing = plan.min_calls - report.rpc_calls - self.work.qsize()
            if missing <= 0 or rounds >= 20:
                break
            per = max(2, math.ceil(missing / (3 * len(self.rpcs))))  # hostile n, raw 4 x n/2
        self.drain()
        assert self.server is not None
        if self.server.proc.poll() is None and not self.broken.is_set():
            report.rss_mb["end"] = rss_mb(self.server.proc.pid)
            report.rss_growth_mb = max(report.rss_growth_mb, report.rss_mb["end"] - self.rss_base)
        _after(self.server, self.channel, report, self.rpcs)  # type: ignore[arg-type]
        self.finish_server()
        if report.rss_growth_mb > RSS_GROWTH_LIMIT_MB:
            report.add(
                "(server)",
                f"RSS grew {report.rss_growth_mb:.0f} MB (limit {RSS_GROWTH_LIMIT_MB:g})",
                "most while fuzzing: "
                + ", ".join(f"{k} +{v:.0f} MB" for k, v in report.rss_steps_mb.most_common(4)),
            )
        report.seconds = time.monotonic() - t0
        return report


def run_fuzz(
    launch: Callable[[], RunningServer],
    plan: Plan,
    progress: Callable[[str], None] = lambda _: None,
) -> Report:
    """Fuzz servers from `launch` (a fresh one after each that broke) with `plan`."""
    return _Run(launch, plan, progress).run()


def _after(server: RunningServer, channel: grpc.Channel, report: Report, rpcs: list[Rpc]) -> None:
    """The server is alive and SERVING for "" and every service."""
    code = server.proc.poll()
    if code is not None:
        tail = "\n".join(server.lines[-20:])
        report.add(
            "(server)", f"server process exited with {code}", tail.replace(str(REPO), "<repo>")
        )
        return
    check_health = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    services = sorted({r.path.split("/")[1] for r in rpcs if r.path.startswith("/crm.v1.")})
    for name in ["", *services]:
        try:
            status = check_health(
                health_pb2.HealthCheckRequest(service=name), timeout=UNARY_BOUND_S
            ).status
            if status != health_pb2.HealthCheckResponse.SERVING:
                label = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
                report.add("(server)", f"health of {name!r} is {label} after the run")
        except grpc.RpcError as err:
            code = err.code().name  # type: ignore[attr-defined]
            report.add("(server)", f"health check of {name!r} failed after the run: {code}")

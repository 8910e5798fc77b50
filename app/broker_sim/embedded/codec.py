"""Wire codecs: frames, field tables, message properties, and the hot-path methods by hand.

pamqp encodes and decodes the rare methods; the ones every message crosses (Publish, the content
header, Deliver, Ack) are coded here because pamqp costs several times more per message. Content
headers are kept raw: a message's properties go back out byte for byte as they came in.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

FRAME_METHOD = 1
FRAME_HEADER = 2
FRAME_BODY = 3
FRAME_HEARTBEAT = 8
FRAME_END = 0xCE
FRAME_END_BYTE = b"\xce"
PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
HEARTBEAT_FRAME = b"\x08\x00\x00\x00\x00\x00\x00\xce"

FRAME_HEAD = struct.Struct(">BHI")
METHOD_ID = struct.Struct(">HH")
_SHORT = struct.Struct(">H")
_LONG = struct.Struct(">I")
_LONGLONG = struct.Struct(">Q")
_HEADER_PREFIX = struct.Struct(">HHQ")

# Basic class methods on the hot path, as (class_id << 16 | method_id).
BASIC_PUBLISH = (60 << 16) | 40
BASIC_ACK = (60 << 16) | 80


class CodecError(ValueError):
    """A frame or a value in it could not be decoded."""


def frame(frame_type: int, channel: int, payload: bytes) -> bytes:
    """One frame on the wire."""
    return FRAME_HEAD.pack(frame_type, channel, len(payload)) + payload + FRAME_END_BYTE


def shortstr(value: str) -> bytes:
    """A short string (at most 255 bytes once encoded)."""
    raw = value.encode()
    if len(raw) > 255:
        raise CodecError("short string longer than 255 bytes")
    return bytes((len(raw),)) + raw


def read_shortstr(data: bytes | memoryview, offset: int) -> tuple[str, int]:
    """A short string at ``offset``; returns it and the next offset."""
    size = data[offset]
    end = offset + 1 + size
    if end > len(data):
        raise CodecError("short string runs past the end of the frame")
    try:
        return bytes(data[offset + 1 : end]).decode(), end
    except UnicodeDecodeError as exc:
        raise CodecError("short string is not UTF-8") from exc


# --- hot-path methods --------------------------------------------------------------------------


def decode_publish(payload: bytes) -> tuple[str, str, bool, bool, bytes]:
    """Basic.Publish arguments after the method id: exchange, routing key, mandatory, immediate, and
    the exchange and routing key as encoded (what Basic.Deliver and the store write back)."""
    # reserved-1 (short), exchange, routing-key, bits
    exchange, offset = read_shortstr(payload, 6)
    routing_key, offset = read_shortstr(payload, offset)
    if offset >= len(payload):
        raise CodecError("Basic.Publish is truncated")
    bits = payload[offset]
    return exchange, routing_key, bool(bits & 1), bool(bits & 2), payload[6:offset]


def decode_ack(payload: bytes) -> tuple[int, bool]:
    """Basic.Ack arguments: delivery tag and multiple."""
    if len(payload) < 13:
        raise CodecError("Basic.Ack is truncated")
    return _LONGLONG.unpack_from(payload, 4)[0], bool(payload[12] & 1)


def ack_frame(channel: int, delivery_tag: int, multiple: bool) -> bytes:
    """Basic.Ack (a publisher confirm)."""
    return frame(
        FRAME_METHOD, channel, b"\x00\x3c\x00\x50" + _LONGLONG.pack(delivery_tag) + bytes((multiple,))
    )


def nack_frame(channel: int, delivery_tag: int, multiple: bool) -> bytes:
    """Basic.Nack (a publisher confirm saying the broker lost the message)."""
    return frame(
        FRAME_METHOD, channel, b"\x00\x3c\x00\x78" + _LONGLONG.pack(delivery_tag) + bytes((multiple | 2,))
    )


def content_frames(channel: int, props: bytes, body: bytes, frame_max: int) -> list[bytes]:
    """The content header and body frames of one message; bodies split at ``frame_max - 8``."""
    head = frame(FRAME_HEADER, channel, _HEADER_PREFIX.pack(60, 0, len(body)) + props)
    if not body:
        return [head]
    step = frame_max - 8
    if len(body) <= step:
        return [head, frame(FRAME_BODY, channel, body)]
    view = memoryview(body)
    return [head] + [frame(FRAME_BODY, channel, bytes(view[i : i + step])) for i in range(0, len(body), step)]


_DELIVER_HEAD = struct.Struct(">BHI4s")  # frame head and Basic.Deliver's method id
_TAG_REDELIVERED = struct.Struct(">QB")
_HEADER_FRAME_HEAD = struct.Struct(">BBHIHHQ")  # frame end, then the content header's frame head and prefix
_BODY_FRAME_HEAD = struct.Struct(">BBHI")  # frame end, then the body frame's head
_DELIVER_ID = b"\x00\x3c\x00\x3c"


def deliver_frames(
    channel: int,
    consumer_tag: bytes,
    delivery_tag: int,
    redelivered: bool,
    address: bytes,
    props: bytes,
    body: bytes,
    frame_max: int,
) -> bytes:
    """Basic.Deliver and its content as one string of bytes; ``consumer_tag`` and ``address`` (exchange
    and routing key) pre-encoded."""
    size = len(body)
    if not size or size > frame_max - 8:
        method = _DELIVER_ID + consumer_tag + _TAG_REDELIVERED.pack(delivery_tag, redelivered) + address
        return b"".join(
            [frame(FRAME_METHOD, channel, method), *content_frames(channel, props, body, frame_max)]
        )
    # The usual case, a body in one frame: three frames built in one join, no list of frames.
    return b"".join(
        (
            _DELIVER_HEAD.pack(FRAME_METHOD, channel, 13 + len(consumer_tag) + len(address), _DELIVER_ID),
            consumer_tag,
            _TAG_REDELIVERED.pack(delivery_tag, redelivered),
            address,
            _HEADER_FRAME_HEAD.pack(FRAME_END, FRAME_HEADER, channel, 12 + len(props), 60, 0, size),
            props,
            _BODY_FRAME_HEAD.pack(FRAME_END, FRAME_BODY, channel, size),
            body,
            FRAME_END_BYTE,
        )
    )


def get_ok_frames(
    channel: int,
    delivery_tag: int,
    redelivered: bool,
    exchange: str,
    routing_key: str,
    message_count: int,
    props: bytes,
    body: bytes,
    frame_max: int,
) -> list[bytes]:
    """Basic.GetOk and its content."""
    method = (
        b"\x00\x3c\x00\x47"
        + _LONGLONG.pack(delivery_tag)
        + (b"\x01" if redelivered else b"\x00")
        + shortstr(exchange)
        + shortstr(routing_key)
        + _LONG.pack(message_count)
    )
    return [frame(FRAME_METHOD, channel, method), *content_frames(channel, props, body, frame_max)]


def return_frames(
    channel: int,
    reply_code: int,
    reply_text: str,
    exchange: str,
    routing_key: str,
    props: bytes,
    body: bytes,
    frame_max: int,
) -> list[bytes]:
    """Basic.Return and its content (properties exactly as published)."""
    method = (
        b"\x00\x3c\x00\x32"
        + _SHORT.pack(reply_code)
        + shortstr(reply_text)
        + shortstr(exchange)
        + shortstr(routing_key)
    )
    return [frame(FRAME_METHOD, channel, method), *content_frames(channel, props, body, frame_max)]


def parse_content_header(payload: bytes) -> tuple[int, bytes]:
    """A content header frame: body size and the raw property flags and list."""
    if len(payload) < 14:
        raise CodecError("content header is truncated")
    class_id, _weight, body_size = _HEADER_PREFIX.unpack_from(payload, 0)
    if class_id != 60:
        raise CodecError(f"content header for class {class_id}")
    return body_size, payload[12:]


# --- field tables ------------------------------------------------------------------------------

_FIXED = {
    b"b"[0]: struct.Struct(">b"),
    b"B"[0]: struct.Struct(">B"),
    b"s"[0]: struct.Struct(">h"),
    b"u"[0]: struct.Struct(">H"),
    b"I"[0]: struct.Struct(">i"),
    b"i"[0]: struct.Struct(">I"),
    b"l"[0]: struct.Struct(">q"),
    b"L"[0]: struct.Struct(">Q"),
    b"f"[0]: struct.Struct(">f"),
    b"d"[0]: struct.Struct(">d"),
    b"T"[0]: struct.Struct(">Q"),
}


class Timestamp(int):
    """A table value of type timestamp (seconds since the epoch), kept apart from plain integers."""


class SignedInt(int):
    """A table value RabbitMQ writes as a 32-bit ``signedint`` (e.g. the trace's ``channel``)."""


def _value(data: bytes, offset: int) -> tuple[Any, int]:
    if offset >= len(data):
        raise CodecError("field value runs past the end")
    kind = data[offset]
    offset += 1
    fixed = _FIXED.get(kind)
    if fixed is not None:
        if offset + fixed.size > len(data):
            raise CodecError("field value runs past the end")
        (value,) = fixed.unpack_from(data, offset)
        return (Timestamp(value) if kind == 0x54 else value), offset + fixed.size
    if kind == 0x74:  # t: boolean
        return bool(data[offset]), offset + 1
    if kind in (0x53, 0x78):  # S: long string, x: byte array
        (size,) = _LONG.unpack_from(data, offset)
        end = offset + 4 + size
        if end > len(data):
            raise CodecError("long string runs past the end")
        raw = bytes(data[offset + 4 : end])
        if kind == 0x53:
            try:
                return raw.decode(), end
            except UnicodeDecodeError:
                return raw, end
        return bytearray(raw), end
    if kind == 0x46:  # F: table
        (size,) = _LONG.unpack_from(data, offset)
        end = offset + 4 + size
        return decode_table(data[offset:end]), end
    if kind == 0x41:  # A: array
        (size,) = _LONG.unpack_from(data, offset)
        end = offset + 4 + size
        if end > len(data):
            raise CodecError("array runs past the end")
        items, cursor = [], offset + 4
        while cursor < end:
            item, cursor = _value(data, cursor)
            items.append(item)
        return items, end
    if kind == 0x44:  # D: decimal (scale, value)
        scale = data[offset]
        (raw,) = struct.unpack_from(">i", data, offset + 1)
        return raw / (10**scale), offset + 5
    if kind == 0x56:  # V: void
        return None, offset
    raise CodecError(f"unknown field type {chr(kind)!r}")


def table_entries(data: bytes) -> Iterator[tuple[str, Any, bytes]]:
    """Each entry of an encoded table (with its length prefix): key, value, and the entry's raw bytes."""
    if len(data) < 4:
        raise CodecError("table is truncated")
    (size,) = _LONG.unpack_from(data, 0)
    end = 4 + size
    if end > len(data):
        raise CodecError("table runs past the end")
    offset = 4
    while offset < end:
        start = offset
        key, offset = read_shortstr(data, offset)
        value, offset = _value(data, offset)
        if offset > end:
            raise CodecError("table entry runs past the end")
        yield key, value, data[start:offset]


def decode_table(data: bytes) -> dict[str, Any]:
    """An encoded table (with its length prefix) as a dict."""
    try:
        return {key: value for key, value, _ in table_entries(data)}
    except (IndexError, struct.error) as exc:
        raise CodecError("malformed table") from exc


def encode_value(value: Any) -> bytes:
    """One table value, typed as RabbitMQ types the values it writes itself."""
    if isinstance(value, bool):
        return b"t" + bytes((value,))
    if isinstance(value, Timestamp):
        return b"T" + _LONGLONG.pack(value)
    if isinstance(value, SignedInt):
        return b"I" + struct.pack(">i", value)
    if isinstance(value, int):
        return b"l" + struct.pack(">q", value)
    if isinstance(value, float):
        return b"d" + struct.pack(">d", value)
    if isinstance(value, str):
        raw = value.encode()
        return b"S" + _LONG.pack(len(raw)) + raw
    if isinstance(value, bytes):
        return b"S" + _LONG.pack(len(value)) + value
    if isinstance(value, bytearray):
        return b"x" + _LONG.pack(len(value)) + bytes(value)
    if isinstance(value, dict):
        return b"F" + encode_table(value)
    if isinstance(value, list | tuple):
        items = b"".join(encode_value(v) for v in value)
        return b"A" + _LONG.pack(len(items)) + items
    if value is None:
        return b"V"
    raise CodecError(f"cannot encode {type(value).__name__} in a table")


def encode_entry(key: str, value: Any) -> bytes:
    """One table entry."""
    return shortstr(key) + encode_value(value)


def encode_table(table: dict[str, Any]) -> bytes:
    """A table with its length prefix."""
    body = b"".join(encode_entry(k, v) for k, v in table.items())
    return _LONG.pack(len(body)) + body


def table_from_entries(entries: list[bytes]) -> bytes:
    """A table from already-encoded entries."""
    body = b"".join(entries)
    return _LONG.pack(len(body)) + body


# --- message properties ------------------------------------------------------------------------

# (name, kind) in flag order, highest bit first; kinds: s shortstr, t table, o octet, T timestamp.
PROPERTY_FIELDS = (
    ("content_type", "s"),
    ("content_encoding", "s"),
    ("headers", "t"),
    ("delivery_mode", "o"),
    ("priority", "o"),
    ("correlation_id", "s"),
    ("reply_to", "s"),
    ("expiration", "s"),
    ("message_id", "s"),
    ("timestamp", "T"),
    ("type", "s"),
    ("user_id", "s"),
    ("app_id", "s"),
    ("cluster_id", "s"),
)


def decode_properties(raw: bytes) -> dict[str, Any]:
    """Raw property flags and list as a dict; ``headers`` stays an encoded table (bytes)."""
    try:
        if len(raw) < 2:
            raise CodecError("property flags are truncated")
        (flags,) = _SHORT.unpack_from(raw, 0)
        offset = 2
        if flags & 1:  # a second flag word: no such properties exist in 0-9-1
            raise CodecError("unknown property flags")
        props: dict[str, Any] = {}
        for index, (name, kind) in enumerate(PROPERTY_FIELDS):
            if not flags & (1 << (15 - index)):
                continue
            if kind == "s":
                props[name], offset = read_shortstr(raw, offset)
            elif kind == "o":
                props[name] = raw[offset]
                offset += 1
            elif kind == "T":
                props[name] = Timestamp(_LONGLONG.unpack_from(raw, offset)[0])
                offset += 8
            else:
                (size,) = _LONG.unpack_from(raw, offset)
                end = offset + 4 + size
                if end > len(raw):
                    raise CodecError("headers run past the end")
                props[name] = raw[offset:end]
                offset = end
        if offset != len(raw):
            raise CodecError("trailing bytes after the properties")
        return props
    except (IndexError, struct.error) as exc:
        raise CodecError("malformed properties") from exc


def encode_properties(props: dict[str, Any]) -> bytes:
    """Property flags and list from a dict shaped like :func:`decode_properties` returns."""
    flags = 0
    parts: list[bytes] = []
    for index, (name, kind) in enumerate(PROPERTY_FIELDS):
        value = props.get(name)
        if value is None:
            continue
        flags |= 1 << (15 - index)
        if kind == "s":
            parts.append(shortstr(value))
        elif kind == "o":
            parts.append(bytes((value,)))
        elif kind == "T":
            parts.append(_LONGLONG.pack(value))
        else:
            parts.append(value if isinstance(value, bytes) else encode_table(value))
    return _SHORT.pack(flags) + b"".join(parts)


# --- other outgoing methods ----------------------------------------------------------------------


def method_frame(channel: int, class_id: int, method_id: int, *fields: bytes) -> bytes:
    """A method frame from already-encoded fields (see :func:`short`, :func:`long`, :func:`shortstr`...)."""
    return frame(FRAME_METHOD, channel, METHOD_ID.pack(class_id, method_id) + b"".join(fields))


def short(value: int) -> bytes:
    """A 16-bit unsigned field."""
    return _SHORT.pack(value)


def long(value: int) -> bytes:
    """A 32-bit unsigned field."""
    return _LONG.pack(value)


def longstr(value: bytes) -> bytes:
    """A long string field."""
    return _LONG.pack(len(value)) + value


def bits(*flags: bool) -> bytes:
    """Consecutive bit fields packed into one octet."""
    return bytes((sum(1 << i for i, flag in enumerate(flags) if flag),))


def reply_text(text: str) -> bytes:
    """A reply text as a short string, cut at 255 bytes as RabbitMQ does."""
    raw = text.encode()[:255]
    return bytes((len(raw),)) + raw

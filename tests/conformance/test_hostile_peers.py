"""Malformed and hostile peers: the right error, only their connection closed, everyone else unaffected."""

from __future__ import annotations

import contextlib
import socket
import struct

import pika
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pamqp import commands

from tests.conformance.conftest import BrokerUnderTest
from tests.conformance.raw import READ_TIMEOUT, RawClient


class Bystander:
    """A pika connection that must keep working while others misbehave."""

    def __init__(self, target: BrokerUnderTest) -> None:
        self.conn = pika.BlockingConnection(pika.URLParameters(target.url))
        self.channel = self.conn.channel()
        self.queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.count = 0

    def still_works(self) -> None:
        """Publish and get one message."""
        self.count += 1
        body = b"%d" % self.count
        self.channel.basic_publish("", self.queue, body)
        deadline = 100
        while deadline:
            method, _, got = self.channel.basic_get(self.queue, auto_ack=True)
            if method is not None:
                assert got == body
                return
            self.conn.process_data_events(time_limit=0.05)
            deadline -= 1
        raise AssertionError("the bystander's message never came back")

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


@pytest.fixture
def bystander(broker: BrokerUnderTest) -> BrokerUnderTest:
    return broker


def _raw_frame(kind: int, channel: int, payload: bytes, end: int = 0xCE) -> bytes:
    return struct.pack(">BHI", kind, channel, len(payload)) + payload + bytes((end,))


CASES = {
    "bad frame type": (_raw_frame(9, 0, b"abc"), 501),
    "bad frame end": (_raw_frame(1, 0, b"\x00\x0a\x00\x32", end=0x00), 501),
    "method on unopened channel": (_raw_frame(1, 7, b"\x00\x32\x00\x0a" + b"\x00" * 8), 504),
    "heartbeat on a channel": (_raw_frame(8, 3, b""), 505),
    "body without a publish": (_raw_frame(1, 1, b"\x00\x14\x00\x0a\x00") + _raw_frame(3, 1, b"xyz"), 505),
    "unknown method": (_raw_frame(1, 0, b"\x00\x63\x00\x63"), None),
    "oversized frame": (struct.pack(">BHI", 1, 1, 10_000_000) + b"\x00" * 64, 501),
}


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_frames_close_only_that_connection(broker: BrokerUnderTest, case: str) -> None:
    """Each malformed input is answered with a connection error (or a hang-up); a bystander carries on."""
    data, code = CASES[case]
    bystander = Bystander(broker)
    client = RawClient(broker)
    try:
        client.handshake()
        client.sock.sendall(data)
        close = client.outcome()
        if code is not None:
            assert close is not None, "expected a Connection.Close"
            assert close.reply_code == code, close.reply_text
        bystander.still_works()
    finally:
        client.close()
        bystander.close()


def test_wrong_protocol_header_gets_ours_back(broker: BrokerUnderTest) -> None:
    """As RabbitMQ: answer with ``AMQP 0-9-1``'s header, then close."""
    with socket.create_connection((broker.host, broker.port), timeout=READ_TIMEOUT) as sock:
        sock.sendall(b"HTTP/1.1")
        received = b""
        with contextlib.suppress(ConnectionResetError):  # RabbitMQ may reset once it has answered
            while chunk := sock.recv(64):
                received += chunk
    assert received == b"AMQP\x00\x00\x09\x01"


def test_wrong_password_is_refused_with_403(broker: BrokerUnderTest) -> None:
    """authentication_failure_close: a Connection.Close with 403 ACCESS_REFUSED."""
    client = RawClient(broker)
    try:
        client.sock.sendall(b"AMQP\x00\x00\x09\x01")
        assert isinstance(client.read_frame(), commands.Connection.Start)
        client.start_ok("nobody", "bad")
        close = client.outcome()
        assert close is not None and close.reply_code == 403
        assert close.reply_text.startswith(
            "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN"
        )
    finally:
        client.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    garbage=st.one_of(
        st.binary(min_size=1, max_size=300),
        st.builds(
            lambda kind, channel, payload, cut: _raw_frame(kind, channel, payload)[:cut],
            st.sampled_from([1, 2, 3, 8]),
            st.integers(0, 3),
            st.binary(max_size=200),
            st.integers(1, 220),
        ),
    )
)
def test_fuzzed_frames_never_hurt_anyone_else(broker: BrokerUnderTest, garbage: bytes) -> None:
    """Garbage or a truncated frame after the handshake, then the client stops writing: the broker ends
    that connection (with a connection error, if any) and a bystander still works."""
    bystander = Bystander(broker)
    client = RawClient(broker)
    try:
        client.handshake()
        try:
            client.sock.sendall(garbage)
            client.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the broker may end the connection before the last byte, even reset it (ENOTCONN)
        close = client.outcome()
        if close is not None:
            assert close.reply_code in (320, 501, 502, 503, 504, 505, 530, 540, 541), close.reply_text
        bystander.still_works()
    finally:
        client.close()
        bystander.close()

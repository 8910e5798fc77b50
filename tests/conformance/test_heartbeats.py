"""Heartbeats both ways: the broker sends them at the negotiated interval and drops a silent peer."""

from __future__ import annotations

import struct

from pamqp import commands

from tests.conformance.conftest import BrokerUnderTest
from tests.conformance.raw import RawClient

HEARTBEAT = b"\x08\x00\x00\x00\x00\x00\x00\xce"


def test_broker_heartbeats_then_drops_a_silent_peer(broker: BrokerUnderTest) -> None:
    """With heartbeat=1 negotiated and a client that never writes again, the broker's heartbeats
    arrive, then it closes the socket (RabbitMQ sends no Connection.Close for missed heartbeats)."""
    client = RawClient(broker)
    try:
        client.sock.sendall(b"AMQP\x00\x00\x09\x01")
        assert isinstance(client.read_frame(), commands.Connection.Start)
        client.start_ok(broker.user, broker.password)
        tune = client.read_frame()
        assert isinstance(tune, commands.Connection.Tune)
        client.send(
            0, commands.Connection.TuneOk(channel_max=tune.channel_max, frame_max=tune.frame_max, heartbeat=1)
        )
        client.send(0, commands.Connection.Open(virtual_host=broker.vhost))
        assert isinstance(client.read_frame(), commands.Connection.OpenOk)
        heartbeats = 0
        received = b""
        try:
            while chunk := client.sock.recv(4096):  # the socket's own timeout is the deadline
                received += chunk
        except (ConnectionResetError, TimeoutError):
            pass
        offset = 0
        while offset + 7 <= len(received):
            kind, _, size = struct.unpack_from(">BHI", received, offset)
            heartbeats += kind == 8
            offset += size + 8
        assert heartbeats >= 1, "the broker sent no heartbeat"
        assert offset == len(received)
    finally:
        client.close()

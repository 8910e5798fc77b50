"""A raw AMQP 0-9-1 client over a blocking socket, for feeding a broker bad frames."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from pamqp import commands, frame, header, heartbeat

from tests.conformance.conftest import BrokerUnderTest

READ_TIMEOUT = 10.0


@dataclass
class Close:
    """A Connection.Close from the broker (decoded by hand: RabbitMQ may put raw octets in the text)."""

    reply_code: int
    reply_text: str


class RawClient:
    """Handshakes like a real client, then sends whatever bytes a test wants."""

    def __init__(self, target: BrokerUnderTest) -> None:
        self.sock = socket.create_connection((target.host, target.port), timeout=READ_TIMEOUT)
        self.target = target
        self._buffer = b""

    def handshake(self) -> None:
        """Protocol header, Start-Ok (PLAIN), Tune-Ok, Open; answers a heartbeat if one comes."""
        self.sock.sendall(header.ProtocolHeader().marshal())
        assert isinstance(self.read_frame(), commands.Connection.Start)
        self.start_ok(self.target.user, self.target.password)
        tune = self.read_frame()
        assert isinstance(tune, commands.Connection.Tune)
        self.send(
            0, commands.Connection.TuneOk(channel_max=tune.channel_max, frame_max=tune.frame_max, heartbeat=0)
        )
        self.send(0, commands.Connection.Open(virtual_host=self.target.vhost))
        assert isinstance(self.read_frame(), commands.Connection.OpenOk)

    def start_ok(self, user: str, password: str) -> None:
        """Connection.Start-Ok with PLAIN credentials; like pika and aio-pika, it asks for
        ``authentication_failure_close``."""
        properties = {"capabilities": {"authentication_failure_close": True}}
        self.send(
            0,
            commands.Connection.StartOk(
                client_properties=properties, mechanism="PLAIN", response=f"\0{user}\0{password}"
            ),
        )

    def send(self, channel: int, value: frame.FrameTypes) -> None:
        """One pamqp frame."""
        self.sock.sendall(frame.marshal(value, channel))

    def read_frame(self) -> frame.FrameTypes | Close | None:
        """The next frame, or None when the broker closed the socket."""
        while True:
            if len(self._buffer) >= 7:
                (size,) = struct.unpack_from(">I", self._buffer, 3)
                if len(self._buffer) >= size + 8:
                    if self._buffer[7:11] == b"\x00\x0a\x00\x32":  # Connection.Close
                        code, length = struct.unpack_from(">HB", self._buffer, 11)
                        text = self._buffer[14 : 14 + length].decode(errors="replace")
                        self._buffer = self._buffer[size + 8 :]
                        return Close(code, text)
                    used, _, value = frame.unmarshal(self._buffer)
                    self._buffer = self._buffer[used:]
                    if isinstance(value, heartbeat.Heartbeat):
                        continue
                    return value
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self._buffer += chunk

    def outcome(self) -> Close | None:
        """Read until the broker closes: its Connection.Close (answered), or None if it just hung up."""
        close = None
        try:
            while True:
                value = self.read_frame()
                if value is None:
                    return close
                if isinstance(value, Close):
                    close = value
                    self.send(0, commands.Connection.CloseOk())
        except OSError:  # reset, broken pipe, or not connected any more: the broker hung up
            return close

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()

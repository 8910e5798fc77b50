"""One client connection: framing, the handshake (PLAIN auth, tune), heartbeats, errors, flow control."""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import socket
from typing import TYPE_CHECKING, Any

from pamqp import commands

from broker_sim.embedded import codec
from broker_sim.embedded.channel import Channel
from broker_sim.embedded.codec import (
    BASIC_ACK,
    BASIC_PUBLISH,
    FRAME_BODY,
    FRAME_END,
    FRAME_HEAD,
    FRAME_HEADER,
    FRAME_HEARTBEAT,
    FRAME_METHOD,
    HEARTBEAT_FRAME,
    PROTOCOL_HEADER,
    encode_table,
    long,
    longstr,
    method_frame,
    reply_text,
    short,
    shortstr,
)
from broker_sim.embedded.errors import (
    ACCESS_REFUSED,
    CHANNEL_ERROR,
    COMMAND_INVALID,
    CONNECTION_FORCED,
    FRAME_ERROR,
    INTERNAL_ERROR,
    NOT_ALLOWED,
    UNEXPECTED_FRAME,
    AMQPError,
)
from broker_sim.embedded.queue import Message

if TYPE_CHECKING:
    from broker_sim.embedded.server import Server

log = logging.getLogger(__name__)

FRAME_MAX = 131_072
CHANNEL_MAX = 2047
HEARTBEAT = 60
HANDSHAKE_TIMEOUT = 10.0
CLOSE_OK_TIMEOUT = 3.0
CLOSING_TIMEOUT = 30.0
"""After Close-Ok the client closes the socket (as on RabbitMQ, which waits 30 s for it): it may still
be flushing frames it queued before its Close."""
WRITE_HIGH_WATER = 4 * 1024 * 1024
PRODUCT = "broker-sim embedded"

SERVER_PROPERTIES: dict[str, Any] = {
    "product": PRODUCT,
    "version": "0.1.0",
    "platform": "Python asyncio",
    "copyright": "broker-sim contributors",
    "information": "An embedded AMQP 0-9-1 broker for broker-sim; RabbitMQ-compatible subset",
    "cluster_name": "broker-sim",
    "capabilities": {
        "publisher_confirms": True,
        "exchange_exchange_bindings": True,
        "basic.nack": True,
        "consumer_cancel_notify": True,
        "connection.blocked": True,
        "consumer_priorities": True,
        "authentication_failure_close": True,
        "per_consumer_qos": True,
        "direct_reply_to": True,
    },
}

# Handshake states; CLOSE_OK_SENT: the client closed, we answered, it closes the socket.
AWAIT_HEADER, AWAIT_START_OK, AWAIT_TUNE_OK, AWAIT_OPEN, OPEN, CLOSING, CLOSED, CLOSE_OK_SENT = range(8)


class Connection(asyncio.Protocol):
    """The server side of one AMQP connection."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.broker = server.broker
        self.transport: asyncio.Transport | None = None
        self.state = AWAIT_HEADER
        self.user = ""
        self.name = ""
        self.frame_max = FRAME_MAX
        self.channel_max = CHANNEL_MAX
        self.heartbeat = 0
        self.paused = False
        self.blocked = False
        """A resource alarm stopped reading from this connection (it published while the alarm was on)."""
        self._blocked_notices = False  # the client asked for connection.blocked / unblocked
        self.channels: dict[int, Channel] = {}
        self._buffer = bytearray()
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._confirm_channels: dict[int, Channel] = {}
        self._loop = asyncio.get_running_loop()
        self.clock = self._loop.time
        self._timer: asyncio.TimerHandle | None = None
        self._received_at = 0.0
        self._sent_at = 0.0

    # --- asyncio.Protocol -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        peer = transport.get_extra_info("peername") or ("?", 0)
        local = transport.get_extra_info("sockname") or ("?", 0)
        self.name = f"{peer[0]}:{peer[1]} -> {local[0]}:{local[1]}"
        self.server.connections.add(self)
        self._timer = self._loop.call_later(HANDSHAKE_TIMEOUT, self._handshake_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.state = CLOSED
        if self._timer is not None:
            self._timer.cancel()
        self.server.connections.discard(self)
        self._release()

    def pause_writing(self) -> None:
        # The client stops reading: stop delivering to it until its socket drains.
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self.redispatch()

    def data_received(self, data: bytes) -> None:
        if self.state == CLOSED:
            return
        self._received_at = self._loop.time()
        self.server.monitor.received(len(data))
        buffer = self._buffer
        try:
            if buffer or self.state == AWAIT_HEADER:
                # Frames are cut from one bytes object: what is left of the last read joins this one.
                buffer += data
                if self.state == AWAIT_HEADER:
                    if len(buffer) < 8:
                        return
                    if bytes(buffer[:8]) != PROTOCOL_HEADER:
                        # RabbitMQ answers a wrong protocol header with the one it speaks, then closes.
                        self._write_now(PROTOCOL_HEADER)
                        self._abort()
                        return
                    del buffer[:8]
                    self._send_start()
                data = bytes(buffer)
                buffer.clear()
            self._read_frames(data)
        except AMQPError as error:
            self.close_with(error)
        except Exception:
            log.exception("embedded broker: internal error on %s", self.name)
            self.close_with(AMQPError(INTERNAL_ERROR, "internal error"))
        self._after_batch()

    # --- frames ---------------------------------------------------------------------------------

    def _read_frames(self, data: bytes) -> None:
        """Handle the whole frames in ``data``; the rest waits in the buffer for the next read."""
        offset = 0
        size_limit = self.frame_max
        end = len(data)
        try:
            # Blocked: stop at the publish that blocked it, as RabbitMQ's reader does; what was read
            # with it (its content, often in the same segment) waits until the alarm clears.
            while end - offset >= 7 and self.state != CLOSED and not self.blocked:
                kind, channel, size = FRAME_HEAD.unpack_from(data, offset)
                if size + 8 > size_limit:
                    raise AMQPError(
                        FRAME_ERROR, f"frame size {size + 8} larger than negotiated maximum {size_limit}"
                    )
                stop = offset + 7 + size
                if stop >= end:
                    break
                if data[stop] != FRAME_END:
                    raise AMQPError(FRAME_ERROR, f"frame end byte missing (got {data[stop]:#x})")
                payload = data[offset + 7 : stop]
                offset = stop + 1
                self._on_frame(kind, channel, payload)
        finally:
            if offset < end:
                self._buffer += data[offset:] if offset else data

    def _on_frame(self, kind: int, number: int, payload: bytes) -> None:
        if number and self.state == OPEN:
            # The hot path, frames on an open channel; anything else takes the checks below.
            channel = self.channels.get(number)
            if channel is not None and not channel.closing:
                if kind in (FRAME_BODY, FRAME_HEADER):
                    try:
                        (channel.on_body if kind == FRAME_BODY else channel.on_header)(payload)
                    except AMQPError as error:
                        self._channel_error(channel, error)
                    return
                if kind == FRAME_METHOD and len(payload) >= 4:
                    if channel.expects_content():
                        raise AMQPError(
                            UNEXPECTED_FRAME,
                            "expected content header for class 60, got non content header frame instead",
                        )
                    self._on_channel_method(channel, int.from_bytes(payload[:4], "big"), payload)
                    return
        if kind == FRAME_HEARTBEAT:
            if number != 0:
                raise AMQPError(UNEXPECTED_FRAME, f"type 8, heartbeat frame on channel {number}")
            return
        if kind not in (FRAME_METHOD, FRAME_HEADER, FRAME_BODY):
            raise AMQPError(FRAME_ERROR, f"type {kind}, unknown frame type")
        if self.state == CLOSE_OK_SENT:
            return  # what the client still flushes after its Close: ignored, as on RabbitMQ
        if self.state == CLOSING:
            if kind == FRAME_METHOD and number == 0:
                self._on_connection_method(payload)
            return
        if number == 0:
            if kind != FRAME_METHOD:
                raise AMQPError(UNEXPECTED_FRAME, f"non-method frame type {kind} on channel 0")
            self._on_connection_method(payload)
            return
        if self.state != OPEN:
            raise AMQPError(CHANNEL_ERROR, "expected 'connection.open'")
        channel = self.channels.get(number)
        if kind == FRAME_METHOD:
            if len(payload) < 4:
                raise AMQPError(FRAME_ERROR, "method frame too short")
            method_id = int.from_bytes(payload[:4], "big")
            if channel is None:
                if method_id == 0x0014000A:  # Channel.Open
                    self._open_channel(number)
                    return
                raise AMQPError(CHANNEL_ERROR, "expected 'channel.open'")
            if channel.closing:
                if method_id == 0x00140028:  # Channel.Close while we close too: confirm it
                    self.send(method_frame(number, 20, 41))
                    self.channels.pop(number, None)
                elif method_id == 0x00140029:  # Channel.CloseOk
                    self.channels.pop(number, None)
                return
            if channel.expects_content():
                raise AMQPError(
                    UNEXPECTED_FRAME,
                    "expected content header for class 60, got non content header frame instead",
                )
            self._on_channel_method(channel, method_id, payload)
            return
        if channel is None:
            raise AMQPError(CHANNEL_ERROR, "expected 'channel.open'")
        if channel.closing:
            return  # the rest of a failed publish: discarded
        try:
            if kind == FRAME_HEADER:
                channel.on_header(payload)
            elif kind == FRAME_BODY:
                channel.on_body(payload)
            else:
                raise AMQPError(FRAME_ERROR, f"unknown frame type {kind}")
        except AMQPError as error:
            self._channel_error(channel, error)

    def _on_channel_method(self, channel: Channel, method_id: int, payload: bytes) -> None:
        try:
            if method_id == BASIC_PUBLISH:
                channel.on_publish(payload)
                if self.server.blocked_reason is not None and not self.blocked:
                    self._block(self.server.blocked_reason)
            elif method_id == BASIC_ACK:
                channel.on_ack(payload)
            else:
                method = _decode_method(payload)
                if isinstance(method, commands.Channel.Close):
                    channel.teardown()
                    self.channels.pop(channel.number, None)
                    self.send(method_frame(channel.number, 20, 41))
                elif isinstance(method, commands.Channel.CloseOk):
                    pass
                elif isinstance(method, commands.Channel.Open):
                    raise AMQPError(CHANNEL_ERROR, "second 'channel.open' seen", (20, 10))
                else:
                    try:
                        channel.on_method(method)
                    except AMQPError as error:
                        if error.method == (0, 0):
                            error.method = method_ids(method)
                        raise
        except AMQPError as error:
            self._channel_error(channel, error)

    def channel_failed(self, channel: Channel, error: AMQPError) -> None:
        """The broker closes a channel on its own (consumer_timeout): Channel.Close, requeue, send now."""
        self._channel_error(channel, error)

    def _channel_error(self, channel: Channel, error: AMQPError) -> None:
        if error.closes_connection:
            raise error
        self.send(channel.close_frame(error))
        channel.teardown()

    def _open_channel(self, number: int) -> None:
        # RabbitMQ 3.10 limits how many channels are open, not their numbers (channel 65535 opens).
        if len(self.channels) >= self.channel_max:
            raise AMQPError(
                NOT_ALLOWED,
                f"number of channels opened ({len(self.channels)}) has reached the negotiated channel_max "
                f"({self.channel_max})",
                (20, 10),
            )
        self.channels[number] = Channel(self, number)
        self.send(method_frame(number, 20, 11, longstr(b"")))

    # --- channel 0 ------------------------------------------------------------------------------

    def _send_start(self) -> None:
        self.state = AWAIT_START_OK
        self.send(
            method_frame(
                0,
                10,
                10,
                bytes((0, 9)),
                encode_table(SERVER_PROPERTIES),
                longstr(b"PLAIN AMQPLAIN"),
                longstr(b"en_US"),
            )
        )

    def _on_connection_method(self, payload: bytes) -> None:
        method = _decode_method(payload)
        if isinstance(method, commands.Connection.Close):
            self._close_ok()
            return
        if isinstance(method, commands.Connection.CloseOk):
            self._close_transport()
            return
        if self.state == CLOSING:
            return
        if self.state == AWAIT_START_OK and isinstance(method, commands.Connection.StartOk):
            self._authenticate(method)
        elif self.state == AWAIT_TUNE_OK and isinstance(method, commands.Connection.TuneOk):
            self._tuned(method)
        elif self.state == AWAIT_OPEN and isinstance(method, commands.Connection.Open):
            if method.virtual_host != self.broker.vhost:
                raise AMQPError(NOT_ALLOWED, f"vhost {method.virtual_host} not found", (10, 40))
            self.state = OPEN
            self.send(method_frame(0, 10, 41, shortstr("")))
        elif self.state == OPEN and isinstance(method, commands.Connection.UpdateSecret):
            # RabbitMQ 3.10's internal backend accepts any new secret; so does this broker.
            self.send(method_frame(0, 10, 71))
        else:
            raise AMQPError(COMMAND_INVALID, f"unexpected {method.name} on channel 0", method_ids(method))

    def _authenticate(self, method: commands.Connection.StartOk) -> None:
        response = method.response
        raw = response.encode() if isinstance(response, str) else bytes(response or b"")
        user, password = "", ""
        if method.mechanism == "PLAIN":
            parts = raw.split(b"\x00")
            if len(parts) == 3:
                user, password = parts[1].decode(errors="replace"), parts[2].decode(errors="replace")
        elif method.mechanism == "AMQPLAIN":
            table = codec.decode_table(long(len(raw)) + raw)
            user, password = str(table.get("LOGIN", "")), str(table.get("PASSWORD", ""))
        else:
            raise AMQPError(
                COMMAND_INVALID, f"unknown authentication mechanism '{method.mechanism}'", (10, 11)
            )
        if not _password_matches(self.broker.users.get(user), password):
            capabilities: Any = (method.client_properties or {}).get("capabilities")
            if not (isinstance(capabilities, dict) and capabilities.get("authentication_failure_close")):
                # Clients that did not ask to be told get the socket closed, as on RabbitMQ.
                log.info("embedded broker: login refused for %r on %s", user, self.name)
                self._abort()
                self.state = CLOSED
                return
            raise AMQPError(
                ACCESS_REFUSED,
                f"Login was refused using authentication mechanism {method.mechanism}. "
                "For details see the broker logfile.",
                (10, 11),
            )
        self.user = user
        capabilities = (method.client_properties or {}).get("capabilities")
        self._blocked_notices = isinstance(capabilities, dict) and bool(
            capabilities.get("connection.blocked")
        )
        self.state = AWAIT_TUNE_OK
        self.send(method_frame(0, 10, 30, short(CHANNEL_MAX), long(FRAME_MAX), short(HEARTBEAT)))

    def _tuned(self, method: commands.Connection.TuneOk) -> None:
        frame_max = method.frame_max
        if frame_max == 0 or method.channel_max == 0:
            # "No limit" is more than this broker allows: RabbitMQ 3.10 refuses it too.
            name = "frame_max" if frame_max == 0 else "channel_max"
            limit = FRAME_MAX if frame_max == 0 else CHANNEL_MAX
            raise AMQPError(
                NOT_ALLOWED, f"negotiated {name} = 0 is higher than the maximum allowed value ({limit})"
            )
        if frame_max < 4096:
            raise AMQPError(NOT_ALLOWED, f"frame_max={frame_max} < 4096 min size", (10, 31))
        if frame_max > FRAME_MAX:
            raise AMQPError(NOT_ALLOWED, f"frame_max={frame_max} > {FRAME_MAX} max size", (10, 31))
        self.frame_max = frame_max
        self.channel_max = method.channel_max
        self.heartbeat = method.heartbeat
        self.state = AWAIT_OPEN
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.heartbeat:
            self._timer = self._loop.call_later(self.heartbeat / 2, self._heartbeat_tick)

    def _heartbeat_tick(self) -> None:
        now = self._loop.time()
        if now - self._received_at > 2 * self.heartbeat and not self.blocked:
            # As RabbitMQ: missed heartbeats close the socket without a Connection.Close.
            log.info("embedded broker: %s missed heartbeats, closing", self.name)
            self._abort()
            return
        if now - self._sent_at >= self.heartbeat / 2:
            self._write_now(HEARTBEAT_FRAME)
        self._timer = self._loop.call_later(self.heartbeat / 2, self._heartbeat_tick)

    def _handshake_timeout(self) -> None:
        if self.state in (AWAIT_HEADER, AWAIT_START_OK, AWAIT_TUNE_OK, AWAIT_OPEN):
            log.info("embedded broker: %s did not finish the handshake in time", self.name)
            self._abort()

    # --- closing --------------------------------------------------------------------------------

    def close_with(self, error: AMQPError) -> None:
        """Close the whole connection with an error: Connection.Close, wait for CloseOk, then the socket."""
        if self.state in (CLOSING, CLOSED):
            return
        if self.state == AWAIT_HEADER:
            self._abort()
            return
        class_id, method_id = error.method
        self._out.append(
            method_frame(
                0, 10, 50, short(error.code), reply_text(error.text), short(class_id), short(method_id)
            )
        )
        self.state = CLOSING
        self._release()
        self._flush()
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(CLOSE_OK_TIMEOUT, self._abort)

    def _close_ok(self) -> None:
        """The client closed: Close-Ok, then wait (bounded) for it to close the socket."""
        self.send(method_frame(0, 10, 51))
        self._flush()
        if self.state != CLOSED:
            self._release()
            self.state = CLOSE_OK_SENT
        if self.blocked and self.transport is not None:
            self.transport.resume_reading()  # to see the client's end of the socket
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(CLOSING_TIMEOUT, self._abort)

    def force_close(self, reason: str) -> None:
        """The broker shuts down: 320 CONNECTION_FORCED, as RabbitMQ does on shutdown."""
        self.close_with(
            AMQPError(CONNECTION_FORCED, f"broker forced connection closure with reason '{reason}'")
        )

    def _release(self) -> None:
        # Requeue what the client held, cancel its consumers, delete its exclusive queues.
        channels = list(self.channels.values())
        self.channels.clear()
        for channel in channels:
            if not channel.closing:
                channel.teardown()
        for queue in [q for q in self.broker.queues.values() if q.exclusive_owner is self]:
            self.broker.remove_queue(queue)

    def _close_transport(self) -> None:
        self._flush()
        if self.state != CLOSED:
            self.state = CLOSING
            self._release()
        if self.transport is not None:
            self.transport.close()

    # --- resource alarms ------------------------------------------------------------------------

    def _block(self, reason: str) -> None:
        # As RabbitMQ: a connection is blocked when it publishes while an alarm is on; reading stops
        # (heartbeats still go out, and a blocked peer is never timed out).
        self.blocked = True
        if self.transport is not None:
            self.transport.pause_reading()
        if self._blocked_notices:
            self.send(method_frame(0, 10, 60, shortstr(reason)))

    def alarms_changed(self) -> None:
        """The server's alarms changed: unblock this connection when none is left."""
        if self.blocked and self.server.blocked_reason is None:
            self.blocked = False
            self._received_at = self._loop.time()
            if self.transport is not None and self.state == OPEN:
                self.transport.resume_reading()
            if self._blocked_notices:
                self.send(method_frame(0, 10, 61))
            if self._buffer:
                # the frames read before the block, held back till now (not from inside the
                # alarm's callback: a publish here may change the alarms again)
                self._loop.call_soon(self.data_received, b"")

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # --- output ---------------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Queue bytes for the socket; written once per loop turn."""
        self._out.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def send_many(self, frames: list[bytes]) -> None:
        """Queue several frames (a method and its content) for the socket."""
        self._out.extend(frames)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _write_now(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
            self._sent_at = self._loop.time()

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._out:
            data = b"".join(self._out)
            self._out.clear()
            self._write_now(data)

    def confirms_due(self, channel: Channel) -> None:
        """A channel has confirms to send once this batch of frames is handled."""
        self._confirm_channels[channel.number] = channel

    def _after_batch(self) -> None:
        if self._confirm_channels:
            channels = list(self._confirm_channels.values())
            self._confirm_channels.clear()
            for channel in channels:
                channel.send_confirms()

    def redispatch(self) -> None:
        """Deliveries may flow again (socket drained, acks, qos): serve this connection's consumers."""
        for channel in list(self.channels.values()):
            for consumer in list(channel.consumers.values()):
                consumer.queue.dispatch()

    # --- tracing --------------------------------------------------------------------------------

    def tracing(self) -> bool:
        """Whether anything listens on the firehose."""
        return self.server.tracing()

    def trace(self, message: Message) -> None:
        """Publish a trace message through ``amq.rabbitmq.trace``."""
        self.server.trace(message)


_NO_SUCH_USER = secrets.token_bytes(32)


def _password_matches(expected: str | None, given: str) -> bool:
    """Constant time whatever the password and whether the user exists: timing tells an attacker nothing."""
    wanted = _NO_SUCH_USER if expected is None else expected.encode()
    return hmac.compare_digest(wanted, given.encode()) and expected is not None


def _decode_method(payload: bytes) -> Any:
    try:
        index = int.from_bytes(payload[:4], "big")
        method = commands.INDEX_MAPPING[index]()
        method.unmarshal(payload[4:])
    except KeyError:
        raise AMQPError(FRAME_ERROR, f"unknown method id {payload[:4].hex()}") from None
    except Exception as exc:
        raise AMQPError(FRAME_ERROR, f"cannot decode method {payload[:4].hex()}: {exc}") from None
    return method


def method_ids(method: Any) -> tuple[int, int]:
    """(class id, method id) of a pamqp method."""
    index = int(method.index)
    return index >> 16, index & 0xFFFF

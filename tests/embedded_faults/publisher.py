"""A raw AMQP publisher for the fault suite: confirms, nacks and ``connection.blocked`` as they come.

aio-pika only logs ``connection.blocked``; this client (asyncio, pamqp frames) records every confirm,
nack, blocked and unblocked the broker sends, so a test can tell "blocked" from "hanging".
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pamqp import commands, frame, header, heartbeat
from pamqp.body import ContentBody

PERSISTENT = commands.Basic.Properties(delivery_mode=2)
TRANSIENT = commands.Basic.Properties(delivery_mode=1)


@dataclass
class Outcomes:
    """What the broker answered, per publish sequence number."""

    confirmed: set[int] = field(default_factory=set)
    nacked: set[int] = field(default_factory=set)
    blocked: list[str] = field(default_factory=list)
    unblocked: int = 0
    heartbeats: int = 0


class RawPublisher:
    """One connection, one channel in confirm mode; :meth:`publish` numbers messages 1, 2, 3…"""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.outcomes = Outcomes()
        self.sent = 0
        self._floor = 0  # every publish up to this one is answered
        self.lost: BaseException | None = None
        self._changed = asyncio.Event()
        self._replies: asyncio.Queue[object] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def connect(
        cls, host: str, port: int, user: str, password: str, heartbeat: int = 0
    ) -> RawPublisher:
        """Handshake (asking for ``connection.blocked``), open channel 1, confirm mode. With a
        ``heartbeat`` the broker sends heartbeats; this client never does."""
        reader, writer = await asyncio.open_connection(host, port)
        client = cls(reader, writer)
        writer.write(header.ProtocolHeader().marshal())
        client._task = asyncio.get_running_loop().create_task(client._read())
        assert isinstance(await client._reply(), commands.Connection.Start)
        capabilities: Any = {"connection.blocked": True, "publisher_confirms": True, "basic.nack": True}
        client._send(
            0,
            commands.Connection.StartOk(
                client_properties={"capabilities": capabilities},
                mechanism="PLAIN",
                response=f"\0{user}\0{password}",
            ),
        )
        tune = await client._reply()
        assert isinstance(tune, commands.Connection.Tune)
        client._send(
            0, commands.Connection.TuneOk(channel_max=16, frame_max=tune.frame_max, heartbeat=heartbeat)
        )
        client._send(0, commands.Connection.Open(virtual_host="/"))
        assert isinstance(await client._reply(), commands.Connection.OpenOk)
        client._send(1, commands.Channel.Open())
        assert isinstance(await client._reply(), commands.Channel.OpenOk)
        client._send(1, commands.Confirm.Select())
        assert isinstance(await client._reply(), commands.Confirm.SelectOk)
        return client

    async def declare(self, queue: str, durable: bool = True) -> None:
        """Queue.Declare."""
        self._send(1, commands.Queue.Declare(queue=queue, durable=durable))
        assert isinstance(await self._reply(), commands.Queue.DeclareOk)

    def publish(self, queue: str, body: bytes, properties: commands.Basic.Properties = PERSISTENT) -> int:
        """Publish to ``queue`` through the default exchange; returns its sequence number."""
        self.sent += 1
        data = (
            frame.marshal(commands.Basic.Publish(exchange="", routing_key=queue), 1)
            + frame.marshal(header.ContentHeader(0, len(body), properties), 1)
            + frame.marshal(ContentBody(body), 1)
        )
        self.writer.write(data)
        return self.sent

    @property
    def settled(self) -> int:
        """Publishes confirmed or nacked so far."""
        return len(self.outcomes.confirmed) + len(self.outcomes.nacked)

    async def wait(self, condition: str, timeout: float) -> None:
        """Wait until ``condition`` holds: "blocked", "unblocked", "settled" (every publish answered),
        "settled-or-blocked", "confirmed>=N" or "heartbeats>=N"."""
        outcomes = self.outcomes
        holds: Callable[[], bool]
        if condition.startswith("confirmed>="):
            wanted = int(condition.removeprefix("confirmed>="))
            holds = lambda: len(outcomes.confirmed) >= wanted  # noqa: E731
        elif condition.startswith("heartbeats>="):
            beats = int(condition.removeprefix("heartbeats>="))
            holds = lambda: outcomes.heartbeats >= beats  # noqa: E731
        else:
            holds = {
                "blocked": lambda: bool(outcomes.blocked),
                "unblocked": lambda: outcomes.unblocked > 0,
                "settled": lambda: self.settled == self.sent,
                "settled-or-blocked": lambda: self.settled == self.sent or bool(outcomes.blocked),
            }[condition]

        async def until() -> None:
            while not holds():
                if self.lost is not None:
                    raise AssertionError(f"the connection was lost: {self.lost!r}")
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(until(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"not {condition} within {timeout:g} s: sent {self.sent}, confirmed "
                f"{len(outcomes.confirmed)}, nacked {len(outcomes.nacked)}, blocked {outcomes.blocked}, "
                f"unblocked {outcomes.unblocked}"
            ) from None

    async def close(self) -> None:
        """Hang up."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()

    # --- frames -------------------------------------------------------------------------------

    def _send(self, channel: int, value: frame.FrameTypes) -> None:
        self.writer.write(frame.marshal(value, channel))

    async def _reply(self) -> object:
        return await asyncio.wait_for(self._replies.get(), 10)

    async def _read(self) -> None:
        buffer = b""
        try:
            while True:
                chunk = await self.reader.read(65536)
                if not chunk:
                    raise ConnectionError("the broker closed the connection")
                buffer += chunk
                while len(buffer) >= 8:
                    try:
                        used, _, value = frame.unmarshal(buffer)
                    except Exception:  # an incomplete frame: read more
                        break
                    buffer = buffer[used:]
                    self._on_frame(value)
        except Exception as exc:
            self.lost = exc
            self._changed.set()

    def _on_frame(self, value: object) -> None:
        outcomes = self.outcomes
        if isinstance(value, (commands.Basic.Ack, commands.Basic.Nack)):
            into = outcomes.confirmed if isinstance(value, commands.Basic.Ack) else outcomes.nacked
            tags = [value.delivery_tag]
            if value.multiple:
                answered = outcomes.confirmed, outcomes.nacked
                start = self._floor + 1
                tags = [t for t in range(start, value.delivery_tag + 1) if all(t not in a for a in answered)]
            into.update(tags)
            while self._floor + 1 in outcomes.confirmed or self._floor + 1 in outcomes.nacked:
                self._floor += 1
        elif isinstance(value, commands.Connection.Blocked):
            outcomes.blocked.append(value.reason)
        elif isinstance(value, commands.Connection.Unblocked):
            outcomes.unblocked += 1
        elif isinstance(value, heartbeat.Heartbeat):
            outcomes.heartbeats += 1
        else:
            self._replies.put_nowait(value)
        self._changed.set()

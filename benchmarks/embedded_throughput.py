"""The embedded broker against RabbitMQ, in one run, interleaved; and its restart time.

1. ``aio-pika``: the same aio-pika code on each broker: a confirming publisher (windows of 100)
   and a consumer (prefetch 100, one ack per message) on one connection, N messages through the
   default exchange. Timed from the first publish to the last ack.
2. ``lean``: the broker's capacity with a lean raw-socket client (hand-built frames, confirms in
   windows of 1,000, consumer prefetch 1,000 acking with multiple=true every 100) — the client
   costs far less than aio-pika, so this shows what the broker itself can move.
3. ``persistent``: both clients again with persistent messages (delivery mode 2) into a durable
   queue: each confirm waits for the broker's fsync (the embedded broker fsyncs per batch of frames,
   RabbitMQ per its own batching).
4. ``restart``: 100,000 persistent messages in a durable queue on a private embedded broker; the
   time from launching the child process until it listens with every message recovered
   (after a clean stop, and after kill -9).

The embedded broker runs as a child process (as broker-sim runs it), RabbitMQ in a private vhost
made with rabbitmqctl and deleted at the end. Rounds alternate embedded, RabbitMQ, embedded, …

    uv run python benchmarks/embedded_throughput.py [--messages N] [--repeat K] [--restart-messages M]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from pamqp import commands
from pamqp import frame as pframe

from broker_sim.embedded.codec import FRAME_BODY, FRAME_HEADER, FRAME_METHOD, frame, shortstr
from broker_sim.embedded.launch import EmbeddedBroker

RABBITMQ = ("127.0.0.1", 5672, "guest", "guest")
BODY = b"x" * 64


# --- the aio-pika round ---------------------------------------------------------------------------


async def aio_pika_round(url: str, count: int, persistent: bool = False) -> float:
    """Messages/s end to end with aio-pika: confirms in windows of 100, prefetch 100, ack each."""
    connection = await aio_pika.connect(url)
    try:
        publisher = await connection.channel(publisher_confirms=True)
        consumer = await connection.channel()
        await consumer.set_qos(prefetch_count=100)
        queue = await consumer.declare_queue(
            f"bench-{uuid.uuid4().hex[:8]}", durable=persistent, exclusive=not persistent
        )
        mode = aio_pika.DeliveryMode.PERSISTENT if persistent else aio_pika.DeliveryMode.NOT_PERSISTENT
        done = asyncio.get_running_loop().create_future()
        received = 0

        async def on_message(message: AbstractIncomingMessage) -> None:
            nonlocal received
            await message.ack()
            received += 1
            if received == count and not done.done():
                done.set_result(None)

        tag = await queue.consume(on_message)
        started = time.perf_counter()
        for window in range(0, count, 100):
            await asyncio.gather(
                *(
                    publisher.default_exchange.publish(
                        aio_pika.Message(BODY, message_id=f"m{i}", delivery_mode=mode), queue.name
                    )
                    for i in range(window, min(count, window + 100))
                )
            )
        await asyncio.wait_for(done, 300)
        rate = count / (time.perf_counter() - started)
        if persistent:
            await queue.cancel(tag)
            await queue.delete(if_unused=False, if_empty=False)
        return rate
    finally:
        await connection.close()


# --- the lean client ------------------------------------------------------------------------------


class LeanClient:
    """A minimal AMQP client over asyncio streams: hand-built frames, no per-message objects."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls, host: str, port: int, user: str, password: str, vhost: str
    ) -> AsyncIterator[LeanClient]:
        """Handshake; yields a client with channel 1 open."""
        reader, writer = await asyncio.open_connection(host, port)
        client = cls(reader, writer)
        writer.write(b"AMQP\x00\x00\x09\x01")
        await client.expect(commands.Connection.Start)
        client.send(
            0,
            commands.Connection.StartOk(
                client_properties={}, mechanism="PLAIN", response=f"\0{user}\0{password}"
            ),
        )
        tune = await client.expect(commands.Connection.Tune)
        client.send(
            0, commands.Connection.TuneOk(channel_max=tune.channel_max, frame_max=tune.frame_max, heartbeat=0)
        )
        client.send(0, commands.Connection.Open(virtual_host=vhost))
        await client.expect(commands.Connection.OpenOk)
        client.send(1, commands.Channel.Open())
        await client.expect(commands.Channel.OpenOk)
        try:
            yield client
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def send(self, channel: int, method: commands.base.Frame) -> None:  # type: ignore[name-defined]
        self.writer.write(pframe.marshal(method, channel))

    async def read_frame(self) -> tuple[int, int, bytes]:
        head = await self.reader.readexactly(7)
        kind, channel, size = struct.unpack(">BHI", head)
        payload = await self.reader.readexactly(size + 1)
        return kind, channel, payload[:-1]

    async def expect(self, kind: type) -> object:
        while True:
            ftype, _, payload = await self.read_frame()
            if ftype == FRAME_METHOD:
                _, _, method = pframe.unmarshal(frame(FRAME_METHOD, 0, payload))
                if isinstance(method, kind):
                    return method
                raise RuntimeError(f"expected {kind.__name__}, got {method}")

    def publish_frames(self, queue: str, persistent: bool) -> bytes:
        """Basic.Publish + header + body, built once and written many times."""
        props = b"\x10\x00\x02" if persistent else b"\x00\x00"
        method = b"\x00\x3c\x00\x28\x00\x00" + shortstr("") + shortstr(queue) + b"\x00"
        header = struct.pack(">HHQ", 60, 0, len(BODY)) + props
        return frame(FRAME_METHOD, 1, method) + frame(FRAME_HEADER, 1, header) + frame(FRAME_BODY, 1, BODY)

    async def declare(self, queue: str, durable: bool) -> None:
        self.send(1, commands.Queue.Declare(queue=queue, durable=durable, auto_delete=not durable))
        await self.expect(commands.Queue.DeclareOk)

    async def delete(self, queue: str) -> None:
        self.send(1, commands.Queue.Delete(queue=queue))
        await self.expect(commands.Queue.DeleteOk)

    async def publish_confirmed(self, queue: str, count: int, window: int, persistent: bool) -> None:
        """Publish ``count`` messages with confirms, at most ``window`` unconfirmed."""
        self.send(1, commands.Confirm.Select())
        await self.expect(commands.Confirm.SelectOk)
        data = self.publish_frames(queue, persistent)
        sent = confirmed = 0
        while confirmed < count:
            burst = min(window - (sent - confirmed), count - sent)
            if burst > 0:
                self.writer.write(data * burst)
                sent += burst
            kind, _, payload = await self.read_frame()
            if kind == FRAME_METHOD and payload[:4] == b"\x00\x3c\x00\x50":
                confirmed = struct.unpack_from(">Q", payload, 4)[0]
            elif kind == FRAME_METHOD and payload[:4] == b"\x00\x3c\x00\x78":
                raise RuntimeError("nacked")

    async def consume(self, queue: str, count: int) -> None:
        """Consume ``count`` messages, prefetch 1000, ack multiple every 100."""
        self.send(1, commands.Basic.Qos(prefetch_count=1000))
        await self.expect(commands.Basic.QosOk)
        self.send(1, commands.Basic.Consume(queue=queue, consumer_tag="lean"))
        await self.expect(commands.Basic.ConsumeOk)
        received = 0
        while received < count:
            kind, _, payload = await self.read_frame()
            if kind == FRAME_METHOD and payload[:4] == b"\x00\x3c\x00\x3c":
                received += 1
                if received % 100 == 0 or received == count:
                    tag_at = 5 + payload[4]
                    tag = struct.unpack_from(">Q", payload, tag_at)[0]
                    self.writer.write(
                        frame(FRAME_METHOD, 1, b"\x00\x3c\x00\x50" + struct.pack(">Q", tag) + b"\x01")
                    )


async def lean_round(address: tuple[str, int, str, str, str], count: int, persistent: bool = False) -> float:
    """Messages/s end to end with the lean client: a publishing and a consuming connection at once."""
    queue = f"lean-{uuid.uuid4().hex[:8]}"
    async with LeanClient.connect(*address) as publisher, LeanClient.connect(*address) as consumer:
        await consumer.declare(queue, durable=persistent)
        started = time.perf_counter()
        await asyncio.gather(
            publisher.publish_confirmed(queue, count, 1000, persistent), consumer.consume(queue, count)
        )
        rate = count / (time.perf_counter() - started)
        if persistent:
            await publisher.delete(queue)
        return rate


# --- restart --------------------------------------------------------------------------------------


async def restart_times(messages: int) -> dict[str, float]:
    """Seconds from launch to listening with ``messages`` persistent messages on disk."""
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        broker = EmbeddedBroker(Path(tmp) / "data", user="bench", password="bench")
        await broker.start()
        address = (broker.host, broker.port, "bench", "bench", "/")
        async with LeanClient.connect(*address) as client:
            await client.declare("kept", durable=True)
            started = time.perf_counter()
            await client.publish_confirmed("kept", messages, 2000, True)
            times["persistent publish msg/s"] = messages / (time.perf_counter() - started)
        for label, crash in (("clean", False), ("kill -9", True)):
            if crash:
                await broker.kill()
            else:
                await broker.stop()
            started = time.perf_counter()
            await broker.start()
            times[f"restart after {label} (s)"] = time.perf_counter() - started
            connection = await aio_pika.connect(broker.url)
            channel = await connection.channel()
            queue = await channel.declare_queue("kept", passive=True)
            assert queue.declaration_result.message_count == messages, queue.declaration_result.message_count
            await connection.close()
        times["log size (MB)"] = (broker.data_dir / "store.log").stat().st_size / 1e6
        await broker.stop()
    return times


# --- the run --------------------------------------------------------------------------------------


def rabbitmqctl(*args: str) -> None:
    exe = shutil.which("rabbitmqctl")
    if exe is None:
        raise RuntimeError("rabbitmqctl not found")
    subprocess.run([exe, "-q", *args], check=True, capture_output=True, timeout=60)


async def interleaved(
    rounds: dict[str, Callable[[], Awaitable[float]]], repeat: int
) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {name: [] for name in rounds}
    for _ in range(repeat):
        for name, run in rounds.items():
            results[name].append(await run())
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--lean-messages", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--restart-messages", type=int, default=100_000)
    parser.add_argument("--skip-restart", action="store_true", help="only the throughput rounds")
    args = parser.parse_args()

    vhost = f"broker-sim-bench-{uuid.uuid4().hex[:8]}"
    host, port, user, password = RABBITMQ
    rabbit_url = f"amqp://{user}:{password}@{host}:{port}/{vhost}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
    with tempfile.TemporaryDirectory() as tmp:
        embedded = EmbeddedBroker(Path(tmp) / "data", user="bench", password="bench")
        await embedded.start()
        try:
            emb = (embedded.host, embedded.port, "bench", "bench", "/")
            rmq = (host, port, user, password, vhost)
            results = await interleaved(
                {
                    "aio-pika  embedded": lambda: aio_pika_round(embedded.url, args.messages),
                    "aio-pika  RabbitMQ": lambda: aio_pika_round(rabbit_url, args.messages),
                    "lean      embedded": lambda: lean_round(emb, args.lean_messages),
                    "lean      RabbitMQ": lambda: lean_round(rmq, args.lean_messages),
                    "aio-pika persistent embedded": lambda: aio_pika_round(embedded.url, args.messages, True),
                    "aio-pika persistent RabbitMQ": lambda: aio_pika_round(rabbit_url, args.messages, True),
                    "lean persistent embedded": lambda: lean_round(emb, args.lean_messages, True),
                    "lean persistent RabbitMQ": lambda: lean_round(rmq, args.lean_messages, True),
                },
                args.repeat,
            )
        finally:
            await embedded.stop()
            rabbitmqctl("delete_vhost", vhost)
    print(
        f"# {platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()} · "
        f"{args.messages} msgs (aio-pika), {args.lean_messages} (lean), medians of {args.repeat}"
    )
    print("| client / broker | msg/s (median) | runs |")
    print("|---|---:|---|")
    for name, values in results.items():
        runs = ", ".join(f"{v:,.0f}" for v in values)
        print(f"| {name} | {statistics.median(values):,.0f} | {runs} |")
    print()
    for client in ("aio-pika ", "lean     ", "aio-pika persistent", "lean persistent"):
        label = client if client.endswith("persistent") else f"{client:<9}"
        ratio = statistics.median(results[f"{label} embedded"]) / statistics.median(
            results[f"{label} RabbitMQ"]
        )
        print(f"- {client.strip()}: embedded / RabbitMQ = {ratio:.2f}")
    if args.skip_restart:
        return
    print(f"\n# restart with {args.restart_messages:,} persistent messages (64-byte bodies)")
    for label, value in (await restart_times(args.restart_messages)).items():
        print(f"- {label}: {value:,.2f}")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

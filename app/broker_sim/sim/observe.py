"""Watching the broker: its routing decisions (firehose trace) and its queue depths."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage, AbstractQueue

from broker_sim.domain.events import FlowEvent, QueueDepth, Routed
from broker_sim.sim.topology import Topology

log = logging.getLogger(__name__)

TRACE_EXCHANGE = "amq.rabbitmq.trace"
TRACE_QUEUE_MAX = 10_000
"""Length cap of the trace queue: if the observer falls behind, the oldest traces drop, not the broker."""
PROBE_TIMEOUT = 1.0
DEPTH_INTERVAL = 0.5


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


class RouteTracer:
    """Reports the broker's routing decisions from ``publish.<exchange>`` trace messages.

    It runs on a connection of its own, into an exclusive, length-capped queue, and binds only
    the scenario's exchanges' ``publish.`` keys: consumers already see the deliveries.
    """

    def __init__(self, topology: Topology, emit: Callable[[FlowEvent], None], own_prefix: str = "") -> None:
        self.topology = topology
        self._emit = emit
        # Others may publish to the same exchanges (the default exchange is shared by the whole
        # vhost): only this engine's messages are reported, the picture is of this run.
        self._own_prefix = own_prefix
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._probe_id = f"probe-{uuid.uuid4().hex[:12]}"
        self._probe_seen = asyncio.Event()

    async def start(self, connection: AbstractConnection) -> None:
        """Declare the trace queue, bind it, and start reading traces."""
        self._channel = await connection.channel(publisher_confirms=False)
        self._queue = await self._channel.declare_queue(
            "", exclusive=True, auto_delete=True, arguments={"x-max-length": TRACE_QUEUE_MAX}
        )
        exchanges = {self.topology.exchange_name(p.exchange) for p in self.topology.scenario.producers}
        exchanges |= {self.topology.exchange_name(e.name) for e in self.topology.scenario.exchanges}
        for name in sorted(exchanges):
            await self._queue.bind(TRACE_EXCHANGE, routing_key=f"publish.{name}")
        await self._queue.consume(self._on_trace, no_ack=True)

    async def probe(self) -> bool:
        """Is the broker tracing this vhost? Publish to a throwaway exchange and wait for its trace."""
        if self._channel is None or self._queue is None:
            return False
        name = f"{self.topology.prefix}{self._probe_id}"
        self._probe_seen.clear()
        exchange = await self._channel.declare_exchange(name, aio_pika.ExchangeType.FANOUT, auto_delete=True)
        await self._queue.bind(TRACE_EXCHANGE, routing_key=f"publish.{name}")
        try:
            await exchange.publish(aio_pika.Message(b"probe", message_id=self._probe_id), "", mandatory=False)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._probe_seen.wait(), PROBE_TIMEOUT)
        finally:
            await self._queue.unbind(TRACE_EXCHANGE, routing_key=f"publish.{name}")
            await exchange.delete()
        return self._probe_seen.is_set()

    async def _on_trace(self, message: AbstractIncomingMessage) -> None:
        headers = message.headers or {}
        props = headers.get("properties") or {}
        message_id = _text(props.get("message_id", "")) if isinstance(props, dict) else ""
        if message_id == self._probe_id:
            self._probe_seen.set()
            return
        if not message_id or not message_id.startswith(self._own_prefix):
            return
        routed = _as_list(headers.get("routed_queues"))
        keys = _as_list(headers.get("routing_keys"))
        exchange = self.topology.exchange_from_broker(_text(headers.get("exchange_name", "")))
        self._emit(
            Routed(
                message_id=message_id,
                exchange=exchange,
                routing_key=_text(keys[0]) if keys else "",
                queues=tuple(self.topology.queue_key(_text(q)) for q in routed),
                source="trace",
            )
        )

    async def stop(self) -> None:
        """Close the trace channel (its exclusive queue goes with it)."""
        if self._channel is not None and not self._channel.is_closed:
            with contextlib.suppress(aiormq.exceptions.AMQPError, ConnectionError, RuntimeError):
                await self._channel.close()


class DepthPoller:
    """Polls each queue's ready count and consumer count with passive declares."""

    def __init__(self, topology: Topology, emit: Callable[[FlowEvent], None], unacked: Counter[str]) -> None:
        self.topology = topology
        self._emit = emit
        self._unacked = unacked
        self._channel: AbstractChannel | None = None

    async def run(self, connection: AbstractConnection) -> None:
        """Poll forever (until cancelled); a poll that fails is tried again on the next round."""
        while True:
            for spec in self.topology.scenario.queues:
                await self.poll_one(connection, spec.name)
            await asyncio.sleep(DEPTH_INTERVAL)

    async def poll_one(self, connection: AbstractConnection, name: str) -> QueueDepth | None:
        """One queue's depth, now (``ready`` is None when the queue is gone); None when not known now."""
        try:
            if self._channel is None or self._channel.is_closed:
                self._channel = await connection.channel(publisher_confirms=False)
            queue = await self._channel.declare_queue(self.topology.queue_name(name), passive=True)
        except aiormq.exceptions.ChannelNotFoundEntity:
            self._channel = None  # a failed passive declare closes the channel
            event = QueueDepth(name, None, max(0, self._unacked[name]), None)
        except (aiormq.exceptions.AMQPError, RuntimeError, OSError) as exc:
            # Any other channel trouble: open a new channel next time; the figure is not known now.
            self._channel = None
            log.debug("depth of %s not known now: %s", name, exc)
            return None
        else:
            result = queue.declaration_result
            event = QueueDepth(name, result.message_count, max(0, self._unacked[name]), result.consumer_count)
        self._emit(event)
        return event

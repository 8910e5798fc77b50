"""Declaring a scenario's exchanges, queues and bindings, and the map between its names and the broker's."""

from __future__ import annotations

import logging
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractQueue

from broker_sim.domain.definitions import queue_arguments
from broker_sim.domain.scenario import DEFAULT_EXCHANGE, QueueSpec, Scenario

log = logging.getLogger(__name__)


class Topology:
    """A scenario's topology on one broker.

    Broker names get a prefix, so runs (and tests) never collide; server-named queues get their
    names from the broker at declare time, and are mapped back to the scenario's handle.
    """

    def __init__(self, scenario: Scenario, prefix: str) -> None:
        self.scenario = scenario
        self.prefix = prefix
        self._queue_names: dict[str, str] = {}
        self._queue_keys: dict[str, str] = {}
        self.held: dict[str, int] = {}
        """Messages each queue held when it was last declared (the broker's declare-ok count)."""

    def exchange_name(self, name: str) -> str:
        """The broker's name for a scenario exchange (the default exchange stays nameless)."""
        if name == DEFAULT_EXCHANGE or name.startswith("amq."):
            return name
        return self.prefix + name

    def queue_name(self, name: str) -> str:
        """The broker's name for a scenario queue (known after :meth:`declare` for server-named ones)."""
        return self._queue_names.get(name, self.prefix + name)

    def queue_key(self, broker_name: str) -> str:
        """The scenario's name for a broker queue; a queue it does not know keeps its broker name."""
        return self._queue_keys.get(broker_name, broker_name)

    def routing_key(self, exchange: str, key: str) -> str:
        """On the default exchange a routing key names a queue: map the scenario's name to the broker's."""
        if exchange == DEFAULT_EXCHANGE and self.scenario.queue(key) is not None:
            return self.queue_name(key)
        return key

    def exchange_from_broker(self, broker_name: str) -> str:
        """The scenario's name for a broker exchange name."""
        if broker_name.startswith(self.prefix):
            return broker_name[len(self.prefix) :]
        return broker_name

    async def declare(self, channel: AbstractChannel) -> None:
        """Declare everything, in dependency order: exchanges, queues, then bindings."""
        self._queue_names.clear()
        self._queue_keys.clear()
        for ex in self.scenario.exchanges:
            alternate = ex.alternate_exchange
            await channel.declare_exchange(
                self.exchange_name(ex.name),
                aio_pika.ExchangeType(ex.type),
                durable=ex.durable,
                auto_delete=ex.auto_delete,
                arguments={"alternate-exchange": self.exchange_name(alternate)} if alternate else None,
            )
        for q in self.scenario.queues:
            declared = await self._declare_queue(channel, q)
            self.held[q.name] = declared.declaration_result.message_count or 0
            self._queue_names[q.name] = declared.name
            self._queue_keys[declared.name] = q.name
        for b in self.scenario.bindings:
            arguments: dict[str, Any] | None = None
            if b.match:
                arguments = {"x-match": b.match, **b.headers}
            if b.to_exchange:
                # exchange-to-exchange: what the source routes by this key goes on to the destination
                destination = await channel.get_exchange(self.exchange_name(b.to_exchange), ensure=False)
                await destination.bind(
                    self.exchange_name(b.exchange), routing_key=b.routing_key, arguments=arguments
                )
                continue
            queue = await channel.get_queue(self.queue_name(b.queue), ensure=False)
            await queue.bind(self.exchange_name(b.exchange), routing_key=b.routing_key, arguments=arguments)

    async def _declare_queue(self, channel: AbstractChannel, q: QueueSpec) -> AbstractQueue:
        arguments = queue_arguments(
            q, self.exchange_name, lambda key: self.routing_key(DEFAULT_EXCHANGE, key)
        )
        return await channel.declare_queue(
            "" if q.server_named else self.prefix + q.name,
            durable=q.durable,
            exclusive=q.exclusive,
            auto_delete=q.auto_delete,
            arguments=arguments or None,
        )

    async def remove(self, channel: AbstractChannel, *, include_durable: bool = False) -> None:
        """Delete what was declared, keeping durable things unless asked (they are meant to last)."""
        for q in self.scenario.queues:
            if q.durable and not include_durable:
                continue
            await channel.queue_delete(self.queue_name(q.name))
        for ex in self.scenario.exchanges:
            if ex.durable and not include_durable:
                continue
            await channel.exchange_delete(self.exchange_name(ex.name))

"""One connection's worth of a running scenario, opened and closed as one object.

A :class:`Session` holds what lives and dies with the broker connection: the consuming
connection, the producers' connection of their own, the observer connection with its route
tracer, the depth poller and the producers' tasks, the channels a user's publish goes out on.
The engine keeps what outlives a connection (the scenario, producers, consumer groups, clock);
after a loss it opens a new session instead of resetting fields one by one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import TYPE_CHECKING

import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange

from broker_sim.domain.events import TracingChanged
from broker_sim.domain.scenario import DEFAULT_EXCHANGE
from broker_sim.domain.words import in_words
from broker_sim.sim.consumer import ChannelError
from broker_sim.sim.link import connect_with_retry, watch_blocked
from broker_sim.sim.observe import RouteTracer

if TYPE_CHECKING:
    from broker_sim.sim.engine import Engine

log = logging.getLogger(__name__)

CLOSE_TIMEOUT = 5.0
"""Seconds a close (the D key's, the observer's, a task's cancel) may take before it is left behind."""


class Session:
    """The live connections, channels and tasks of one engine on one broker connection."""

    def __init__(self, engine: Engine, conn: AbstractConnection) -> None:
        self.engine = engine
        self.conn = conn
        self.lost = asyncio.Event()
        """Set when any of the session's connections closes: the engine then opens a new session."""
        conn.close_callbacks.add(lambda *_: self.lost.set())
        self.publishing: AbstractConnection | None = None
        """Producers publish on a connection of their own: a broker under an alarm stops reading
        from publishing connections, and consumers' acks must still get through to drain it."""
        self.observer: AbstractConnection | None = None
        self.tracer: RouteTracer | None = None
        self.traced = False
        self.tasks: list[asyncio.Task[None]] = []
        self.producer_exchanges: dict[str, AbstractExchange] = {}
        self._manual_channel: AbstractChannel | None = None
        self._manual_exchanges: dict[str, AbstractExchange] = {}

    async def open(self) -> None:
        """Declare the topology, start observing, consuming and polling; open the publishers' channels."""
        engine, conn = self.engine, self.conn
        channel = await conn.channel(publisher_confirms=False)
        try:
            await engine.topology.declare(channel)
            engine.announce_leftovers()
        except aiormq.exceptions.ChannelPreconditionFailed as exc:
            raise OSError(
                f"the broker already has a queue or exchange of this name with other settings "
                f"({in_words(exc)}); delete it or use another vhost"
            ) from None
        finally:
            with contextlib.suppress(*ChannelError):
                await channel.close()
        await self._observe()
        for group in engine.groups.values():
            await group.attach(conn)
        self.tasks.append(asyncio.create_task(engine.poller.run(conn), name="depth poller"))
        publishing = self.publishing = await self._connect("publishers")
        watch_blocked(publishing, engine.blocked)
        for producer in engine.producers.values():
            ch = await publishing.channel(publisher_confirms=True, on_return_raises=False)
            if producer.spec.direct_reply:
                await producer.consume_replies(ch)
            self.producer_exchanges[producer.spec.name] = await self._exchange(ch, producer.spec.exchange)
        self._manual_channel = await publishing.channel(publisher_confirms=True, on_return_raises=False)

    def start_publishing(self) -> None:
        """Start the producers, once the engine says it is attached: a message that flows means
        the engine is connected, so a control (the D key) never finds it "not connected" then."""
        engine = self.engine
        for name, exchange in self.producer_exchanges.items():
            producer = engine.producers[name]
            route = functools.partial(engine.topology.routing_key, producer.spec.exchange)
            self.tasks.append(asyncio.create_task(producer.run(exchange, route), name=f"producer {name}"))

    async def _connect(self, role: str) -> AbstractConnection:
        settings = self.engine.settings
        connection = await connect_with_retry(
            settings.url,
            settings.url_source,
            lambda e: None,
            name=f"broker-sim {self.engine.scenario.name} {role}",
        )
        # Losing any of them silently would stop part of the picture: it is losing the broker.
        connection.close_callbacks.add(lambda *_: self.lost.set())
        return connection

    async def _observe(self) -> None:
        engine = self.engine
        self.observer = await self._connect("observer")
        self.tracer = RouteTracer(engine.topology, engine.emit, own_prefix=f"{engine.run_id}.")
        await self.tracer.start(self.observer)
        self.traced = await self.tracer.probe()
        switch = engine.trace_switch
        if self.traced:
            detail = switch.how or "the broker traces this vhost"
        elif engine.may_trace:
            how = await switch.turn_on()
            self.traced = how is not None and await self.tracer.probe()
            if how is None:
                detail = f"could not turn tracing on: {switch.how}"
            elif not self.traced:  # say what the broker showed, not what was attempted
                detail = f"{how}, but no trace came back: routing is inferred from deliveries"
            else:
                detail = how
        else:
            detail = "tracing is off on this vhost and not broker-sim's to turn on (use --trace)"
        engine.traced = self.traced
        engine.emit(TracingChanged(self.traced, detail))

    async def _exchange(self, channel: AbstractChannel, name: str) -> AbstractExchange:
        if name == DEFAULT_EXCHANGE:
            return channel.default_exchange
        return await channel.get_exchange(self.engine.topology.exchange_name(name), ensure=False)

    async def manual_exchange(self, name: str) -> AbstractExchange | None:
        """The exchange a user's publish goes to, on the publishing connection (None: not open)."""
        if self._manual_channel is None:
            return None
        ex = self._manual_exchanges.get(name)
        if ex is None:
            ex = self._manual_exchanges[name] = await self._exchange(self._manual_channel, name)
        return ex

    def cancel_tasks(self) -> None:
        """Stop publishing and polling now (the engine is stopping)."""
        for task in self.tasks:
            task.cancel()

    async def drop(self) -> None:
        """Close the connections from our side, as a network failure would (the D key)."""
        await close_connection(self.conn)
        if self.publishing is not None:
            await close_connection(self.publishing)
        self.lost.set()

    async def close(self) -> None:
        """Take everything apart, bounded at every step: a task or a close that never ends would
        stop the reconnecting."""
        tasks, self.tasks = self.tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            done, stuck = await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT)
            for task in done:
                failure = None if task.cancelled() else task.exception()
                if failure is not None and not isinstance(failure, ChannelError):
                    log.error("%s failed", task.get_name(), exc_info=failure)
            for task in stuck:
                log.error("%s did not stop within %.0f s; left behind", task.get_name(), CLOSE_TIMEOUT)
        engine = self.engine
        for group in engine.groups.values():
            group.detach()
        engine.unacked.clear()
        if self.tracer is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.tracer.stop(), CLOSE_TIMEOUT)
        for connection in (self.observer, self.publishing, self.conn):
            if connection is not None:
                await close_connection(connection)
        self.observer = self.publishing = self._manual_channel = None
        engine.blocked("")  # a new connection starts unblocked; the broker says again if not


async def close_connection(connection: AbstractConnection) -> None:
    """Close a connection, giving the broker CLOSE_TIMEOUT to answer; a failed close is no error."""
    with contextlib.suppress(TimeoutError, *ChannelError):
        await asyncio.wait_for(connection.close(), CLOSE_TIMEOUT)

"""The engine: runs one scenario on a live broker, survives connection loss, reports every hop."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

import aio_pika
from aio_pika.abc import AbstractConnection

from broker_sim.broker.handle import BrokerHandle, RestartUnavailable
from broker_sim.broker.tracing import TraceSwitch, may_trace, owns_tracing
from broker_sim.domain.events import (
    BrokerRestarted,
    BrokerRestarting,
    ConnectionChanged,
    Delivered,
    FlowEvent,
    Leftover,
    LinkState,
    Purged,
    Routed,
    StepApplied,
)
from broker_sim.domain.scenario import DEFAULT_EXCHANGE, HeaderValue, Scenario
from broker_sim.domain.scenario_file import MAX_PREFETCH
from broker_sim.domain.timeline import Step
from broker_sim.domain.topic import MAX_KEY_BYTES
from broker_sim.domain.words import in_words
from broker_sim.settings import Settings
from broker_sim.sim.bus import EventBus
from broker_sim.sim.consumer import ChannelError, ConsumerGroup
from broker_sim.sim.observe import DepthPoller
from broker_sim.sim.producer import Outgoing, Producer, publish
from broker_sim.sim.reconnect import ATTACH_TIMEOUT, Reconnector
from broker_sim.sim.session import CLOSE_TIMEOUT, Session, close_connection
from broker_sim.sim.topology import Topology
from broker_sim.sim.work import spool_dir

log = logging.getLogger(__name__)

MANUAL_PRODUCER = "you"
"""The producer name of messages a user publishes by hand."""


class EngineError(Exception):
    """A control that cannot be done now, with the reason in words (shown to the user as is)."""


@dataclass(frozen=True, slots=True)
class Done:
    """What a step did: the step as carried out (a kill names the consumer it chose), in words,
    and the figures a caller needs without parsing the words back."""

    step: Step
    text: str
    consumer: str = ""
    """kill: the consumer killed."""
    message_id: str = ""
    """publish: the id of the message sent."""
    seconds: float = 0.0
    """restart-broker: how long the restart took."""


class Engine:
    """Runs a scenario: declares its topology, runs its producers and consumer groups, observes.

    ``start()`` returns at once; connecting (and reconnecting after a loss) happens in a task,
    reported as :class:`ConnectionChanged` events. Controls can be called at any time.
    """

    def __init__(
        self,
        scenario: Scenario,
        settings: Settings,
        *,
        bus: EventBus | None = None,
        prefix: str | None = None,
        remove_durable: bool = False,
        broker: BrokerHandle | None = None,
    ) -> None:
        self.scenario = scenario
        self.broker = broker or BrokerHandle(settings.url)
        if broker is None:
            self.settings = settings
        elif broker.started_by_us:  # its URL came from broker-sim, not from a flag or a file
            self.settings = settings.with_(url=broker.url, url_source=f"broker-sim's {broker.kind}")
        else:
            self.settings = settings.with_(url=broker.url)
        settings = self.settings
        self.bus = bus or EventBus()
        self.run_id = uuid.uuid4().hex[:8]
        base = settings.name_prefix if prefix is None else prefix
        self.topology = Topology(scenario, f"{base}{scenario.name}.")
        self.unacked: Counter[str] = Counter()
        log_dir = settings.data_dir / "logs" / scenario.name
        self.producers = {
            p.name: Producer(p, self.run_id, scenario.seed, self.emit) for p in scenario.producers
        }
        self.groups = {
            g.name: ConsumerGroup(
                g, self.emit, self.topology, log_dir, self.unacked, spool_dir(settings.data_dir)
            )
            for g in scenario.consumers
        }
        self.state = LinkState.CONNECTING
        self.traced = False
        self._remove_durable = remove_durable
        self.may_trace = may_trace(settings.url, settings.trace, started_by_us=self.broker.started_by_us)
        self.trace_switch = TraceSwitch(
            settings.url,
            node_ctl=self.broker.ctl,
            owned=owns_tracing(settings.url, started_by_us=self.broker.started_by_us),
        )
        self._declared_once = False
        self.poller = DepthPoller(self.topology, self.emit, self.unacked)
        self._manual_seq = 0
        self.speed = 1.0
        self._held = False
        self._clock_started: float | None = None
        self._vt_base = 0.0
        self._vt_wall = 0.0
        self._manual_tasks: set[asyncio.Task[Any]] = set()
        self._link = Reconnector(self)

    # -- events -----------------------------------------------------------------------------------

    def emit(self, event: FlowEvent) -> None:
        """Publish an event to the bus; derives inferred routing from deliveries when untraced."""
        # `type(...) is` rather than isinstance: this runs five times per message.
        if type(event) is ConnectionChanged:
            self.state = event.state
        self.bus.emit(event)
        if type(event) is Delivered and not self.traced and not event.redelivered:
            self.bus.emit(
                Routed(event.message_id, event.exchange, event.routing_key, (event.queue,), "inferred")
            )

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Begin connecting and running in the background."""
        self._link.start()

    async def ready(self) -> None:
        """Wait until the scenario runs on a live connection."""
        await self._link.attached.wait()

    @property
    def connected(self) -> bool:
        """True while the scenario runs on a live connection."""
        return self._link.attached.is_set()

    @property
    def _session(self) -> Session | None:
        """The live connection's session (the last one between connections)."""
        return self._link.session

    @property
    def name(self) -> str:
        """The scenario's name."""
        return self.scenario.name

    @property
    def title(self) -> str:
        """The scenario's title."""
        return self.scenario.title

    def new_session(self, conn: AbstractConnection) -> Session:
        """A session of this scenario on a fresh connection (the reconnect loop opens it)."""
        return Session(self, conn)

    def attached(self, *, reconnecting: bool) -> None:
        """The scenario runs on a fresh connection: say so, and start the clock the first time."""
        state = LinkState.BACK if reconnecting else LinkState.CONNECTED
        self.emit(
            ConnectionChanged(
                state,
                self.settings.masked_url,
                "routing " + ("traced by the broker" if self.traced else "inferred from deliveries"),
            )
        )
        if self._clock_started is None:
            self._clock_started = self._vt_wall = time.monotonic()

    def announce_leftovers(self) -> None:
        """Say what durable queues held from an earlier run, the first time only: after a broker
        restart what waits there is this run's own."""
        if not self._declared_once:
            self._declared_once = True
            for name, held in self.topology.held.items():
                if held:
                    self.emit(Leftover(name, held, self.run_id))

    def blocked(self, reason: str) -> None:
        """The broker blocked (or unblocked: ``""``) the publishing connection."""
        for producer in self.producers.values():
            producer.set_blocked(reason)

    async def stop(self) -> None:
        """Stop actors, remove what was declared (durable things stay), close, restore tracing."""
        await self._link.stopping()
        session = self._session
        if self.connected and session is not None:
            session.cancel_tasks()
            for group in self.groups.values():
                with contextlib.suppress(*ChannelError):
                    await group.stop()
            with contextlib.suppress(*ChannelError):
                channel = await session.conn.channel(publisher_confirms=False)
                await self.topology.remove(channel, include_durable=self._remove_durable)
        for task in self._manual_tasks:
            task.cancel()
        await asyncio.gather(*self._manual_tasks, return_exceptions=True)
        if session is not None:
            await session.close()
        with contextlib.suppress(*ChannelError, OSError):
            await self.trace_switch.restore()
        await self._link.end()
        self.emit(ConnectionChanged(LinkState.CLOSED, self.settings.masked_url, "stopped"))

    async def refresh_depths(self) -> None:
        """Poll every queue's depth now (emits :class:`QueueDepth` events)."""
        if self.connected and (session := self._session) is not None:
            for spec in self.scenario.queues:
                with contextlib.suppress(*ChannelError):
                    await self.poller.poll_one(session.conn, spec.name)

    # -- scenario time ----------------------------------------------------------------------------

    def scenario_time(self) -> float:
        """Seconds of scenario time since the first connect: wall time times speed, frozen while held."""
        if self._clock_started is None:
            return 0.0
        if self._held:
            return self._vt_base
        return self._vt_base + (time.monotonic() - self._vt_wall) * self.speed

    def _rebase_clock(self) -> None:
        self._vt_base = self.scenario_time()
        self._vt_wall = time.monotonic()

    def set_speed(self, speed: float) -> None:
        """Replay speed (0.25 to 10): producers' rates and the work's delays scale with it."""
        if not 0.25 <= speed <= 10:
            raise EngineError("speed must be between 0.25x and 10x")
        self._rebase_clock()
        self.speed = speed
        for producer in self.producers.values():
            producer.set_speed(speed)
        for group in self.groups.values():
            group.speed = speed

    def hold(self, held: bool) -> None:
        """Freeze (or unfreeze) scenario time and the producers, as a paused replay does."""
        self._rebase_clock()
        self._held = held
        for producer in self.producers.values():
            producer.set_held(held)

    # -- controls ---------------------------------------------------------------------------------

    def _group(self, name: str) -> ConsumerGroup:
        group = self.groups.get(name)
        if group is None:
            known = ", ".join(self.groups) or "none"
            raise EngineError(f"no consumer group {name!r} in {self.scenario.title} (groups: {known})")
        return group

    def _producer(self, name: str) -> Producer:
        producer = self.producers.get(name)
        if producer is None:
            known = ", ".join(self.producers) or "none"
            raise EngineError(f"no producer {name!r} in {self.scenario.title} (producers: {known})")
        return producer

    def consumers(self, group: str) -> list[str]:
        """Names of a group's live consumers."""
        return [m.name for m in self._group(group).members]

    def _step(self, action: str, **fields: Any) -> Step:
        return Step(at=round(self.scenario_time(), 2), action=action, **fields)  # type: ignore[arg-type]

    async def apply(self, step: Step, source: str = "timeline") -> Done:
        """Carry out one step (from a timeline or a user); returns what was done.

        Raises :class:`EngineError` when it cannot be done; nothing is half-done then.
        """
        try:
            done = await self._apply(step)
        except (*ChannelError, OSError) as exc:  # the broker or the connection failed under the step
            raise EngineError(f"{step.describe()} failed: {in_words(exc)}") from None
        self.emit(StepApplied(done.step, source))
        return done

    async def _apply(self, step: Step) -> Done:
        match step.action:
            case "scale":
                if step.count < 0:
                    raise EngineError("a consumer group cannot have fewer than 0 consumers")
                await self._group(step.group).scale(step.count)
            case "kill":
                if not self.connected:
                    raise EngineError("not connected to the broker: nothing to kill")
                name = await self._group(step.group).kill(step.consumer or None)
                if name is None:
                    what = f"consumer {step.consumer!r}" if step.consumer else "consumer"
                    raise EngineError(f"{step.group} has no {what} to kill")
                return Done(replace(step, consumer=name), f"killed {name}", consumer=name)
            case "prefetch":
                if not 0 <= step.prefetch <= MAX_PREFETCH:
                    raise EngineError(f"prefetch must be between 0 (unlimited) and {MAX_PREFETCH}")
                await self._group(step.group).set_prefetch(step.prefetch)
            case "pause" | "resume" | "rate":
                self._set_producers(step)
            case "burst":
                await self._burst(step.producer, step.count)
            case "publish":
                mid = await self._publish_one(step)
                return Done(step, f"published {mid}", message_id=mid)
            case "drop-connection":
                await self._drop_connection()
                return Done(step, "dropped the connection")
            case "restart-broker":
                seconds = await self._restart_broker(crash=step.crash)
                how = "crashed and restarted" if step.crash else "restarted"
                return Done(step, f"{how} the broker in {seconds:.1f} s", seconds=seconds)
        return Done(step, step.describe())

    async def scale(self, group: str, count: int) -> None:
        """Run ``count`` consumers in a group (applied on connect if not connected now)."""
        await self.apply(self._step("scale", group=group, count=count), "user")

    async def add_consumer(self, group: str) -> None:
        """One more consumer in the group."""
        await self.scale(group, self._group(group).target + 1)

    async def remove_consumer(self, group: str) -> None:
        """One consumer fewer (it finishes its job in hand; what it held goes back to the queue)."""
        target = self._group(group).target
        if target == 0:
            raise EngineError(f"{group} has no consumer left to remove")
        await self.scale(group, target - 1)

    async def set_prefetch(self, group: str, prefetch: int) -> None:
        """Change a group's prefetch (0 = unlimited) by cancelling and consuming again."""
        await self.apply(self._step("prefetch", group=group, prefetch=prefetch), "user")

    async def kill_consumer(self, group: str, consumer: str | None = None) -> str:
        """Kill a consumer mid-message; its unacked messages are redelivered. Returns its name."""
        done = await self.apply(self._step("kill", group=group, consumer=consumer or ""), "user")
        return done.consumer

    def _set_producers(self, step: Step) -> None:
        targets = [self._producer(step.producer)] if step.producer else list(self.producers.values())
        if step.action == "rate" and step.rate < 0:
            raise EngineError("a rate cannot be negative")
        for p in targets:
            if step.action == "rate":
                p.set_rate(step.rate)
            else:
                p.set_paused(step.action == "pause")

    def _apply_now(self, step: Step) -> None:
        # pause / resume / rate need no await, so the UI can call them from anywhere.
        self._set_producers(step)
        self.emit(StepApplied(step, "user"))

    def pause(self, producer: str | None = None) -> None:
        """Pause one producer, or all."""
        self._apply_now(self._step("pause", producer=producer or ""))

    def resume(self, producer: str | None = None) -> None:
        """Resume one producer, or all."""
        self._apply_now(self._step("resume", producer=producer or ""))

    def set_rate(self, producer: str, rate: float) -> None:
        """Set a producer's rate in messages per second."""
        self._apply_now(self._step("rate", producer=producer, rate=rate))

    async def burst(self, producer: str, count: int) -> None:
        """Publish ``count`` messages from a producer at once."""
        await self.apply(self._step("burst", producer=producer, count=count), "user")

    async def _burst(self, name: str, count: int) -> None:
        producer = self._producer(name)
        exchange = self._session.producer_exchanges.get(name) if self._session is not None else None
        if not self.connected or exchange is None:
            raise EngineError("not connected to the broker: the burst was not sent")
        if not 0 < count <= 100_000:
            raise EngineError("a burst is 1 to 100,000 messages")
        await producer.burst(
            exchange, functools.partial(self.topology.routing_key, producer.spec.exchange), count
        )

    async def purge(self, queue: str) -> int:
        """Drop every ready message of a scenario queue (``queue.purge``); returns how many.

        Unacked messages stay with their consumers. A :class:`Purged` event says how many went,
        so they are counted as purged, not lost, and a fresh depth follows it.
        """
        if self.scenario.queue(queue) is None:
            known = ", ".join(q.name for q in self.scenario.queues) or "none"
            raise EngineError(f"no queue {queue!r} in {self.scenario.title} (queues: {known})")
        session = self._session
        if not self.connected or session is None:
            raise EngineError("not connected to the broker: nothing was purged")
        try:
            channel = await session.conn.channel(publisher_confirms=False)
            try:
                target = await channel.get_queue(self.topology.queue_name(queue), ensure=False)
                purged = await target.purge()
            finally:
                with contextlib.suppress(*ChannelError):
                    await channel.close()
        except (*ChannelError, OSError) as exc:
            raise EngineError(f"purging {queue} failed: {in_words(exc)}") from None
        count = purged.message_count or 0
        self.emit(Purged(queue, count))
        await self.poller.poll_one(session.conn, queue)
        return count

    async def drop_connection(self) -> None:
        """A fault: the client's connection goes away under the engine; it reconnects by itself.

        Unacked messages go back to their queues (redelivered), unconfirmed publishes are
        published again once the connection is back.
        """
        await self.apply(self._step("drop-connection"), "user")

    async def _drop_connection(self) -> None:
        if not self.connected or self._session is None:
            raise EngineError("not connected to the broker: nothing to drop")
        # Closing it from our side fires the same close callbacks a network failure does, so the
        # engine goes through lost → reconnecting → back exactly as it would then. A broker that
        # does not answer the close in time is left behind all the same.
        await self._session.drop()

    async def move_to(self, url: str) -> None:
        """Run on at ``url`` (the same broker, another vhost): the session drops and comes back there.

        Tracing is decided afresh for the new vhost; what this engine declared at the old URL is
        removed there, as a stop would (durable things stay). Controls keep their state.
        An engine that is (re)connecting now moves once it is there (at most ATTACH_TIMEOUT).
        """
        if not self.connected:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.ready(), ATTACH_TIMEOUT)
        old = self.settings.url
        self.settings = self.settings.with_(url=url)
        self.may_trace = may_trace(url, self.settings.trace, started_by_us=self.broker.started_by_us)
        with contextlib.suppress(*ChannelError, OSError):
            await self.trace_switch.restore()
        self.trace_switch = TraceSwitch(
            url,
            node_ctl=self.broker.ctl,
            owned=owns_tracing(url, started_by_us=self.broker.started_by_us),
        )
        if self.connected and self._session is not None:
            await self._session.drop()  # the run loop takes the session apart and connects to the new URL
        with contextlib.suppress(*ChannelError, OSError, TimeoutError):
            old_conn = await asyncio.wait_for(aio_pika.connect(old), CLOSE_TIMEOUT)
            try:
                channel = await old_conn.channel(publisher_confirms=False)
                await self.topology.remove(channel, include_durable=self._remove_durable)
            finally:
                await close_connection(old_conn)

    async def restart_broker(self, *, crash: bool = False) -> float:
        """Restart the broker where broker-sim knows how; returns the seconds it took.

        ``crash``: kill -9 it instead (only a broker broker-sim started). The connection drops
        and comes back by itself (lost → reconnecting → back events).
        """
        return (await self.apply(self._step("restart-broker", crash=crash), "user")).seconds

    async def _restart_broker(self, *, crash: bool) -> float:
        if not self.broker.can_restart:
            raise EngineError(f"broker-sim cannot restart this broker: {self.broker.restart_how}")
        if crash and not self.broker.started_by_us:
            raise EngineError(
                f"only a broker broker-sim started can be killed (this one: {self.broker.kind}); "
                "use a restart without crash, or --broker embedded / local"
            )
        self.emit(BrokerRestarting(self.broker.kind, self.broker.restart_how, crash))
        started = time.monotonic()
        try:
            await self.broker.restart(crash=crash)
        except (RestartUnavailable, OSError, RuntimeError) as exc:
            raise EngineError(f"the restart failed: {in_words(exc)}") from None
        seconds = time.monotonic() - started
        self.broker.wake_engines()
        self.emit(BrokerRestarted(self.broker.kind, seconds))
        return seconds

    async def publish_one(
        self,
        exchange: str,
        routing_key: str = "",
        body: str = "",
        *,
        headers: dict[str, HeaderValue] | None = None,
        persistent: bool = False,
    ) -> str:
        """Publish a message by hand; returns its message id. Its fate arrives as events."""
        step = self._step(
            "publish",
            exchange=exchange,
            routing_key=routing_key,
            body=body,
            headers=dict(headers or {}),
            persistent=persistent,
        )
        return (await self.apply(step, "user")).message_id

    async def _publish_one(self, step: Step) -> str:
        exchange, routing_key = step.exchange, step.routing_key
        if exchange != DEFAULT_EXCHANGE and self.scenario.exchange(exchange) is None:
            names = ", ".join(repr(e.name) for e in self.scenario.exchanges) or "only the default ''"
            raise EngineError(f"no exchange {exchange!r} in {self.scenario.title} (exchanges: {names})")
        if len(routing_key.encode()) > MAX_KEY_BYTES:
            raise EngineError(f"the routing key is longer than {MAX_KEY_BYTES} bytes; shorten it")
        ex = await self._session.manual_exchange(exchange) if self.connected and self._session else None
        if ex is None:
            raise EngineError(
                "not connected to the broker: the message was not sent, try again when connected"
            )
        self._manual_seq += 1
        out = Outgoing(
            message_id=f"{self.run_id}.{MANUAL_PRODUCER}.{self._manual_seq}",
            exchange=exchange,
            routing_key=routing_key,
            broker_routing_key=self.topology.routing_key(exchange, routing_key),
            headers=dict(step.headers),
            persistent=step.persistent,
            mandatory=True,
            body=step.body.encode(),
        )
        task = asyncio.create_task(
            publish(ex, out, MANUAL_PRODUCER, self.emit), name=f"publish {out.message_id}"
        )
        self._manual_tasks.add(task)
        task.add_done_callback(self._manual_tasks.discard)
        return out.message_id

"""One tab's engine stopping never turns tracing off under another tab (or another broker-sim).

On broker-sim's own brokers tracing stays on; on a user's vhost (``--trace``) the process that
turned it on turns it off, once nothing reads the trace any more.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import pytest

from broker_sim.broker.handle import BrokerHandle
from broker_sim.domain.events import Routed, TracingChanged
from broker_sim.domain.scenario import ConsumerGroupSpec, ProducerSpec, QueueSpec, Scenario
from broker_sim.domain.urls import parse_url, with_vhost
from broker_sim.settings import Settings
from broker_sim.sim import Engine
from tests import support
from tests.support import DEADLINE, Watcher, missing_rabbitmq, rabbitmqctl, unreachable_reason

TICKING = Scenario(
    name="ticking",
    title="ticking",
    queues=(QueueSpec("q"),),
    producers=(ProducerSpec("p", "", rate=20, routing_keys=("q",)),),
    consumers=(ConsumerGroupSpec("c", "q"),),
)


def traced_now(w: Watcher) -> int:
    return sum(1 for e in w.of(Routed) if e.source == "trace")


async def start(settings: Settings, broker: BrokerHandle | None = None) -> tuple[Engine, Watcher]:
    engine = Engine(TICKING, settings, prefix=f"t{uuid.uuid4().hex[:8]}.", remove_durable=True, broker=broker)
    w = Watcher(engine.bus)
    await engine.start()
    await asyncio.wait_for(engine.ready(), DEADLINE)
    await w.until(lambda: traced_now(w) > 0, "routing traced by the broker")
    return engine, w


async def still_traced(w: Watcher) -> None:
    seen = traced_now(w)
    await w.until(lambda: traced_now(w) > seen + 5, "routing still traced after the other engine stopped")


@pytest.fixture
def users_vhost() -> Iterator[str]:
    """A vhost of the user's (not named broker-sim…) on the machine's RabbitMQ, tracing off."""
    url = support.test_url()
    if reason := unreachable_reason(url):
        missing_rabbitmq(reason)
    vhost = f"-t-users-{uuid.uuid4().hex[:8]}"  # a leading "-" must not read as an option
    rabbitmqctl("add_vhost", "--", vhost)
    rabbitmqctl("set_permissions", f"--vhost={vhost}", "--", parse_url(url).user, ".*", ".*", ".*")
    try:
        yield with_vhost(url, vhost)
    finally:
        rabbitmqctl("delete_vhost", "--", vhost)


def vhost_traces(url: str) -> bool:
    vhost = parse_url(url).vhost
    return any(
        line.split() == [vhost, "true"] for line in rabbitmqctl("list_vhosts", "name", "tracing").splitlines()
    )


async def test_on_a_users_vhost_the_process_that_turned_tracing_on_turns_it_off_last(
    users_vhost: str, tmp_path: Path
) -> None:
    settings = Settings(url=users_vhost, url_source="test", data_dir=tmp_path, trace=True)
    first, w1 = await start(settings)
    second, w2 = await start(settings)
    try:
        assert w1.of(TracingChanged)[-1].detail == "broker-sim turned tracing on (rabbitmqctl)"
        assert w2.of(TracingChanged)[-1].traced  # it found tracing on: not its own to turn off
        await first.stop()  # the tab that turned it on replays: the other tab keeps its routing
        assert await asyncio.to_thread(vhost_traces, users_vhost)
        await still_traced(w2)
        # Another program (another broker-sim) reads the trace too: it keeps tracing on.
        connection = await aio_pika.connect(users_vhost)
        channel = await connection.channel()
        reader = await channel.declare_queue("", exclusive=True)
        await reader.bind("amq.rabbitmq.trace", "publish.#")
        await second.stop()
        assert await asyncio.to_thread(vhost_traces, users_vhost)
        await connection.close()
        # The last reader gone, the next engine of this process to stop turns it off.
        third, _ = await start(settings)
        await third.stop()
        assert not await asyncio.to_thread(vhost_traces, users_vhost)
    finally:
        await first.stop()
        await second.stop()


async def test_on_broker_sims_own_broker_tracing_stays_on_when_an_engine_stops(
    private_broker: BrokerHandle, tmp_path: Path
) -> None:
    settings = Settings(url=private_broker.url, url_source="test", data_dir=tmp_path)
    first, _ = await start(settings, private_broker)
    second, w2 = await start(settings, private_broker)
    try:
        await first.stop()
        await still_traced(w2)
    finally:
        await first.stop()
        await second.stop()

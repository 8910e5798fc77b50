"""The inspector's "broker" figures from the management API: the embedded broker's and RabbitMQ's.

Each runs a scenario on a broker with a management API (broker-sim's embedded one, a private
RabbitMQ node with the management plugin), reads stations as the inspector does, and checks the
panel's lines against what the scenario declared and the engine set up.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from broker_sim.broker.handle import BrokerHandle, EmbeddedHandle
from broker_sim.broker.local_node import LocalNode, find_rabbit_bin, free_port
from broker_sim.broker.management import find_api
from broker_sim.broker.station_reading import StationQuery, read_station
from broker_sim.domain.scenario import (
    BindingSpec,
    ConsumerGroupSpec,
    ExchangeSpec,
    ProducerSpec,
    QueueSpec,
    Scenario,
    WorkSpec,
)
from broker_sim.settings import Settings
from broker_sim.sim import Engine
from broker_sim.tui.broker_feed import BrokerFeed
from broker_sim.tui.inspection import Fact, inspect
from broker_sim.tui.view_state import ScenarioView
from tests.support import missing_rabbitmq, running

DOCUMENTS = Scenario(
    name="api",
    title="management API test",
    exchanges=(ExchangeSpec("docs", "headers", alternate_exchange="spill"), ExchangeSpec("spill", "fanout")),
    queues=(QueueSpec("pdf", max_length=100), QueueSpec("spilled")),
    bindings=(
        BindingSpec("docs", "pdf", headers={"format": "pdf"}, match="all"),
        BindingSpec("spill", "spilled"),
    ),
    producers=(ProducerSpec("p", "docs", rate=20, headers=({"format": "pdf"}, {"format": "doc"})),),
    consumers=(
        ConsumerGroupSpec("w", "pdf", count=2, prefetch=2, work=WorkSpec("delay", 0.01)),
        ConsumerGroupSpec("a", "spilled", ack="auto"),
    ),
)
T = TypeVar("T")
DEADLINE = 30.0
"""RabbitMQ's management plugin publishes its figures every 5 s."""


@pytest.fixture(params=["embedded", "managed node"])
async def with_api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BrokerHandle]:
    """A broker with a management API, each kind in turn."""
    if request.param == "embedded":
        embedded = EmbeddedHandle(tmp_path / "embedded")
        await embedded.start()
        try:
            yield embedded
        finally:
            await embedded.close()
        return
    # as the managed_node fixture does (an async fixture cannot ask for another one by name)
    if find_rabbit_bin() is None:
        missing_rabbitmq("rabbitmq-server is not installed: a private node needs it")
    node = LocalNode(tmp_path / "managed-node", management_port=free_port())
    await node.start()
    try:
        handle = BrokerHandle(node.url)
        await asyncio.to_thread(handle.find_management, f"http://127.0.0.1:{node.management_port}/")
        yield handle
    finally:
        await node.stop()


async def panel(feed: BrokerFeed, broker: BrokerHandle, engine: Engine, selection: str) -> list[Fact]:
    """The inspector's facts about a station, after reading the broker now."""
    await feed.read(broker, engine, selection)
    return inspect(ScenarioView(DOCUMENTS), selection, feed.side(broker, selection)).facts


def broker_says(facts: list[Fact]) -> dict[str, list[str]]:
    said: dict[str, list[str]] = {}
    for fact in facts:
        if fact.source == "broker":
            said.setdefault(fact.label.strip(), []).append(fact.value)
    return said


async def until_api(
    read: Callable[[], Awaitable[object]], holds: Callable[[object], bool], what: str
) -> None:
    """Read until the answer holds, within DEADLINE (the plugin's figures lag by a few seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while True:
        answer = await read()
        if holds(answer):
            return
        if loop.time() > deadline:
            raise AssertionError(f"the management API never said: {what} (last: {answer!r:.500})")
        await asyncio.sleep(0.25)  # a polling interval under a deadline, not a wait for time to pass


async def test_the_inspector_reads_queues_consumers_exchanges_and_bindings_from_the_api(
    with_api: BrokerHandle, tmp_path: Path
) -> None:
    broker, feed = with_api, BrokerFeed()
    assert broker.management_url is not None and broker.management_missing == ""
    settings = Settings(url=broker.url, url_source="test", data_dir=tmp_path)
    async with running(DOCUMENTS, settings, broker=broker) as (engine, w):
        await w.until(lambda: w.tally.acked >= 3 and w.tally.delivered_per_queue["spilled"] >= 1, "traffic")

        async def read_queue() -> dict[str, list[str]]:
            return broker_says(await panel(feed, broker, engine, "q:pdf"))

        # RabbitMQ's plugin counts a new queue's consumers a few seconds after it exists
        await until_api(read_queue, lambda said: said["consumers"] == ["2"], "the queue's 2 consumers")
        queue = await read_queue()
        assert queue["consumers"] == ["2"] and queue["arguments"] == ["x-max-length=100"]
        assert queue["← docs"] == ["key (no key), format=pdf, x-match=all"], "a binding with its arguments"
        prefetch = [v for k, vs in queue.items() if k.startswith("channel") for v in vs]
        assert prefetch == ["prefetch 2 · manual ack"] * 2, queue

        group = broker_says(await panel(feed, broker, engine, "g:a"))
        assert group["at the broker"] == ["1 consumer"]
        assert next(v for k, vs in group.items() if k.startswith("channel") for v in vs).endswith(
            "auto ack (no_ack)"
        )

        consumer = broker_says(await panel(feed, broker, engine, "c:w-2"))
        channel = engine.groups["w"].members[1].channel
        assert channel is not None
        assert consumer[f"channel {channel.number}"] == ["prefetch 2 · manual ack"], (
            "that consumer's own channel"
        )

        exchange = broker_says(await panel(feed, broker, engine, "x:docs"))
        assert exchange["declared"] == ["headers, transient"]
        assert exchange["arguments"] == [f"alternate-exchange={engine.topology.exchange_name('spill')}"]
        assert exchange["→ pdf"] == ["key (no key), format=pdf, x-match=all"]

        binding = broker_says(await panel(feed, broker, engine, "b:x:docs>q:pdf"))
        assert binding == {"→ pdf": ["key (no key), format=pdf, x-match=all"]}

        if isinstance(broker, EmbeddedHandle):
            assert queue["rates"] == ["none: broker-sim's embedded broker keeps none"]
            return

        async def queue_rates() -> list[str]:
            return broker_says(await panel(feed, broker, engine, "q:pdf"))["rates"]

        await until_api(queue_rates, lambda r: "/s in" in str(r), "the queue's message rates")

        async def consumer_rates() -> list[str]:
            return broker_says(await panel(feed, broker, engine, "c:w-1"))["rates"]

        await until_api(consumer_rates, lambda r: "/s acked" in str(r), "the consumer's channel rates")


def test_the_password_never_goes_in_clear_text_across_a_network() -> None:
    api, why = find_api("amqp://u:secret@broker.example.com:5672/")
    assert api is None and "another machine" in why and "secret" not in why
    api, why = find_api("amqp://u:p@127.0.0.1:5672/", "http://admin:secret@10.1.2.3:15672/")
    assert api is None and "http://admin:****@10.1.2.3:15672/" in why and "secret" not in why
    assert find_api("amqp://u:p@broker.example.com/", "https://broker.example.com/")[0] == (
        "https://broker.example.com/"
    )


def test_an_api_that_does_not_answer_is_said_in_words() -> None:
    given = f"http://127.0.0.1:{free_port()}/"
    assert find_api("amqp://u:p@127.0.0.1:5672/", given) == (given, ""), "a given URL is kept as it is"
    reading = read_station("amqp://u:p@127.0.0.1:5672/", given, StationQuery("q", "/", queue="jobs"))
    assert reading.problem.startswith("not reachable (") and reading.queue is None

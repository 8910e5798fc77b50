"""Live controls: scale, prefetch, pause, one-off publish — seen in the broker's own figures."""

from __future__ import annotations

import json

import pytest

from broker_sim.domain.events import Acked, ConsumerUp, Delivered, PrefetchChanged, QueueDepth
from broker_sim.domain.scenario import ConsumerGroupSpec, ProducerSpec, QueueSpec, Scenario, WorkSpec
from broker_sim.domain.urls import parse_url
from broker_sim.settings import Settings
from broker_sim.sim import EngineError
from tests.support import rabbitmqctl, running


def scenario(count: int = 1, prefetch: int = 1, rate: float = 20) -> Scenario:
    return Scenario(
        name="ctl",
        title="controls test",
        queues=(QueueSpec("jobs"),),
        producers=(ProducerSpec("server", "", rate=rate, routing_keys=("jobs",)),),
        consumers=(
            ConsumerGroupSpec("w", "jobs", count=count, prefetch=prefetch, work=WorkSpec("delay", 0.01)),
        ),
    )


def broker_consumers(settings: Settings, broker_queue: str) -> list[int]:
    """Prefetch of each consumer of a queue, as the broker itself reports it."""
    out = rabbitmqctl(
        "list_consumers",
        "-p",
        parse_url(settings.url).vhost,
        "queue_name",
        "prefetch_count",
        "--formatter",
        "json",
    )
    return sorted(
        int(r["prefetch_count"]) for r in json.loads(out or "[]") if r["queue_name"] == broker_queue
    )


async def test_scaling_changes_the_consumer_count_at_the_broker(settings: Settings) -> None:
    async with running(scenario(count=1), settings) as (engine, w):
        await engine.scale("w", 3)
        await w.until(
            lambda: any(e.consumers == 3 for e in w.of(QueueDepth)), "the broker counts 3 consumers"
        )
        assert engine.consumers("w") == ["w-1", "w-2", "w-3"]
        await engine.remove_consumer("w")
        await engine.remove_consumer("w")
        seen = len(w.of(QueueDepth))
        await w.until(lambda: any(e.consumers == 1 for e in w.of(QueueDepth)[seen:]), "back to 1 consumer")
        assert len(engine.consumers("w")) == 1


async def test_prefetch_changes_live_by_consuming_again(rabbitmq_settings: Settings) -> None:
    settings = rabbitmq_settings
    async with running(scenario(count=2, prefetch=1), settings) as (engine, w):
        queue = engine.topology.queue_name("jobs")
        assert broker_consumers(settings, queue) == [1, 1]
        await engine.set_prefetch("w", 0)
        assert w.of(PrefetchChanged)[-1].prefetch == 0
        assert broker_consumers(settings, queue) == [0, 0]
        before = w.tally.acked
        await w.until(lambda: w.tally.acked > before + 3, "still processing after the change")


async def test_pause_stops_publishing_and_resume_restarts_it(settings: Settings) -> None:
    async with running(scenario(rate=50), settings) as (engine, w):
        await w.until(lambda: w.tally.published >= 3, "publishing")
        engine.pause()
        await w.until(lambda: w.tally.confirmed == w.tally.published, "in-flight confirms settled")
        paused_at = w.tally.published
        await w.until(lambda: w.tally.acked == paused_at, "the queue drained")
        assert w.tally.published == paused_at
        engine.resume()
        await w.until(lambda: w.tally.published > paused_at, "publishing again")


async def test_a_message_published_by_hand_is_delivered_and_counted(settings: Settings) -> None:
    async with running(scenario(rate=0), settings) as (engine, w):
        mid = await engine.publish_one(
            "", "jobs", "hello from a user", headers={"who": "me"}, persistent=True
        )
        await w.until(lambda: any(a.message_id == mid for a in w.of(Acked)), "the message processed")
        delivered = next(d for d in w.of(Delivered) if d.message_id == mid)
        assert delivered.queue == "jobs"
        assert w.tally.published == 1


async def test_bad_controls_say_what_was_wrong(settings: Settings) -> None:
    async with running(scenario(), settings) as (engine, _):
        with pytest.raises(EngineError, match="no exchange 'nope'"):
            await engine.publish_one("nope", "k", "x")
        with pytest.raises(EngineError, match="no consumer group 'ghost'"):
            await engine.scale("ghost", 2)
        with pytest.raises(EngineError, match="prefetch must be between"):
            await engine.set_prefetch("w", -1)
        with pytest.raises(EngineError, match="longer than 255 bytes"):
            await engine.publish_one("", "k" * 300, "x")


async def test_log_servers_store_their_own_lines(settings: Settings) -> None:
    from broker_sim.domain.scenario_file import load_scenario
    from broker_sim.resources import builtin_scenarios_dir

    routing = load_scenario(builtin_scenarios_dir() / "3-routing.toml")
    async with running(routing, settings) as (_, w):
        await w.until(lambda: w.tally.consumers["disk-1"].acked >= 2, "two error lines on disk")
        await w.until(lambda: w.tally.consumers["console-1"].acked >= 4, "console lines stored")
    logs = settings.data_dir / "logs" / "routing"
    disk = (logs / "disk-1.log").read_text().splitlines()
    console = (logs / "console-1.log").read_text().splitlines()
    assert disk and all("[error]" in line for line in disk)
    assert console and all("[debug]" not in line for line in console)
    assert len(disk) == w.tally.consumers["disk-1"].acked
    assert any(e.consumer == "disk-1" for e in w.of(ConsumerUp))


async def test_auto_ack_consumers_hold_nothing_unacked_and_lose_what_they_held(settings: Settings) -> None:
    from broker_sim.domain.events import Abandoned

    auto = Scenario(
        name="auto",
        title="auto-ack test",
        queues=(QueueSpec("jobs"),),
        producers=(ProducerSpec("server", "", rate=200, routing_keys=("jobs",), count=40),),
        consumers=(
            ConsumerGroupSpec("w", "jobs", count=1, prefetch=0, ack="auto", work=WorkSpec("delay", 0.2)),
        ),
    )
    async with running(auto, settings) as (engine, w):
        await w.until(lambda: engine.groups["w"].members[0].holding >= 5, "the consumer holds several")
        await w.until(lambda: bool(w.of(QueueDepth)), "a depth poll")
        assert all(e.unacked == 0 for e in w.of(QueueDepth))  # auto-ack: nothing is unacked at the broker
        await engine.scale("w", 0)
        lost = [a for a in w.of(Abandoned) if not a.redelivered]
        assert lost  # acked on delivery, so what it still held is gone, and said so
        assert w.tally.lost == len(lost)

"""How a queue shares messages between consumers: round robin, fair dispatch, redelivery."""

from __future__ import annotations

from collections import Counter

from broker_sim.domain.events import Abandoned, Acked, Delivered, Published
from broker_sim.domain.scenario import ConsumerGroupSpec, ProducerSpec, QueueSpec, Scenario, WorkSpec
from broker_sim.settings import Settings
from tests.support import running


def work_queue(*groups: ConsumerGroupSpec, count: int | None, rate: float = 500) -> Scenario:
    return Scenario(
        name="wq",
        title="work queue test",
        queues=(QueueSpec("jobs", durable=True),),
        producers=(
            ProducerSpec("server", "", rate=rate, routing_keys=("jobs",), count=count, persistent=True),
        ),
        consumers=groups,
    )


async def test_unlimited_prefetch_spreads_strictly_round_robin(settings: Settings) -> None:
    scenario = work_queue(ConsumerGroupSpec("w", "jobs", count=3, prefetch=0), count=30)
    async with running(scenario, settings) as (_, w):
        await w.until(lambda: w.tally.acked == 30, "30 processed")
        seq = {p.message_id: int(p.message_id.rsplit(".", 1)[1]) for p in w.of(Published)}
        consumer_of = {seq[d.message_id]: d.consumer for d in w.of(Delivered)}
        assert Counter(consumer_of.values()) == {"w-1": 10, "w-2": 10, "w-3": 10}
        # i mod N: message i goes where message i - 3 went, and three in a row go to three consumers.
        assert all(consumer_of[i] == consumer_of[i - 3] for i in range(4, 31))
        assert len({consumer_of[1], consumer_of[2], consumer_of[3]}) == 3


async def test_prefetch_one_is_fair_dispatch_a_slow_worker_gets_fewer(settings: Settings) -> None:
    scenario = work_queue(
        ConsumerGroupSpec("fast", "jobs", count=2, prefetch=1, work=WorkSpec("delay", 0.01)),
        ConsumerGroupSpec("slow", "jobs", count=1, prefetch=1, work=WorkSpec("delay", 0.5)),
        count=60,
    )
    async with running(scenario, settings) as (_, w):
        await w.until(lambda: w.tally.acked == 60, "60 processed")
        per = Counter(a.consumer for a in w.of(Acked))
        # Round robin would give each 20; fair dispatch keeps the slow one to a handful.
        assert per["slow-1"] <= 5
        assert per["fast-1"] + per["fast-2"] >= 55


async def test_a_killed_workers_job_is_redelivered_to_another_and_processed(settings: Settings) -> None:
    scenario = work_queue(
        ConsumerGroupSpec("w", "jobs", count=2, prefetch=1, work=WorkSpec("delay", 0.3)), count=6, rate=50
    )
    async with running(scenario, settings) as (engine, w):
        await w.until(lambda: any(engine.groups["w"].members[i].busy for i in range(2)), "a worker busy")
        killed = await engine.kill_consumer("w")
        abandoned = [a for a in w.of(Abandoned) if a.consumer == killed]
        assert abandoned and all(a.redelivered for a in abandoned)
        job = abandoned[0].message_id
        await w.until(lambda: w.tally.acked == 6, "all 6 jobs processed")
        again = [d for d in w.of(Delivered) if d.message_id == job and d.redelivered]
        assert again and again[0].consumer != killed
        assert {a.message_id for a in w.of(Acked)} == {p.message_id for p in w.of(Published)}
        assert engine.consumers("w") == [m for m in ("w-1", "w-2") if m != killed]

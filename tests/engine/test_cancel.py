"""Cancelling half-way: a producer's batch, a consumer leaving with a long job in hand."""

from __future__ import annotations

import asyncio
import uuid

import aio_pika

from broker_sim.domain.events import Confirmed, ConsumerDown, Delivered, FlowEvent, Published
from broker_sim.domain.scenario import ConsumerGroupSpec, ProducerSpec, QueueSpec, Scenario, WorkSpec
from broker_sim.settings import Settings
from broker_sim.sim.producer import WINDOW, Producer
from tests.support import DEADLINE, running


async def test_a_batch_cancelled_half_way_republishes_only_what_was_not_confirmed(settings: Settings) -> None:
    connection = await aio_pika.connect(settings.url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(f"t{uuid.uuid4().hex[:8]}.cancel", auto_delete=True)
        events: list[FlowEvent] = []
        sending: asyncio.Task[None] | None = None

        def emit(event: FlowEvent) -> None:
            events.append(event)
            if isinstance(event, Confirmed) and sending is not None:
                sending.cancel()  # the engine stops (or the connection goes) as confirms arrive

        producer = Producer(ProducerSpec("p", "", routing_keys=(queue.name,)), "run1", 1, emit)
        sending = asyncio.create_task(producer.publish_batch(channel.default_exchange, lambda k: k, WINDOW))
        await asyncio.wait([sending], timeout=DEADLINE)
        assert sending.done()
        confirmed = {e.message_id for e in events if isinstance(e, Confirmed)}
        again = set(producer.in_flight) | {m.message_id for m in producer.retry}
        assert confirmed, "the cancel came with the first confirm"
        assert confirmed.isdisjoint(again), "a confirmed message would be published again"
        published = {e.message_id for e in events if isinstance(e, Published)}
        assert again == published - confirmed  # and everything unanswered is tried again
        await queue.purge()
    finally:
        await connection.close()


SLOW = Scenario(
    name="slow",
    title="a worker with a long job",
    queues=(QueueSpec("jobs"),),
    producers=(ProducerSpec("p", "", rate=0, routing_keys=("jobs",)),),
    consumers=(ConsumerGroupSpec("w", "jobs", count=1, work=WorkSpec("delay", 3600)),),
)


async def test_a_consumer_leaving_with_a_long_job_gives_it_back_instead_of_hanging(
    settings: Settings,
) -> None:
    async with running(SLOW, settings) as (engine, w):
        await engine.burst("p", 1)
        await w.until(lambda: len(w.of(Delivered)) == 1, "the job delivered")
        await asyncio.wait_for(engine.scale("w", 0), DEADLINE)  # an hour-long job does not hold it up
        down = w.of(ConsumerDown)[-1]
        assert "went back to the queue" in down.reason
        await engine.scale("w", 1)
        await w.until(lambda: len(w.of(Delivered)) == 2, "the job delivered again")
        assert w.of(Delivered)[-1].redelivered
        await asyncio.wait_for(engine.stop(), DEADLINE)  # the engine's stop is bounded the same way

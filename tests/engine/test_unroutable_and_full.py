"""Alternate exchanges, exchange-to-exchange bindings, reject-publish overflow and priority
queues, as the engine declares and reports them, on each broker."""

from __future__ import annotations

from broker_sim.domain.events import Acked, Delivered, Published, PublishFailed, Returned
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
from tests.support import running


def ids(w_events: list, key: str) -> list[str]:  # type: ignore[type-arg]
    return [p.message_id for p in w_events if p.routing_key == key]


async def test_unroutable_goes_to_the_alternate_and_a_full_queue_nacks_the_publisher(
    settings: Settings,
) -> None:
    scenario = Scenario(
        name="orders",
        title="orders",
        exchanges=(
            ExchangeSpec("orders", "direct", alternate_exchange="unrouted"),
            ExchangeSpec("unrouted", "fanout"),
            ExchangeSpec("audit", "fanout"),
        ),
        queues=(
            QueueSpec("shipping", max_length=2, overflow="reject-publish"),
            QueueSpec("audit-log"),
            QueueSpec("caught"),
        ),
        bindings=(
            BindingSpec("orders", "shipping", "paid"),
            BindingSpec("orders", "", "paid", to_exchange="audit"),
            BindingSpec("audit", "audit-log"),
            BindingSpec("unrouted", "caught"),
        ),
        producers=(ProducerSpec("shop", "orders", rate=200, routing_keys=("paid", "refund"), count=10),),
        # nobody consumes 'shipping': it fills after 2 and refuses the rest
        consumers=(
            ConsumerGroupSpec("auditor", "audit-log", prefetch=50),
            ConsumerGroupSpec("ops", "caught", prefetch=50),
        ),
    )
    async with running(scenario, settings) as (engine, w):
        await w.until(lambda: w.tally.confirmed + w.tally.publish_failed == 10, "10 publishes answered")
        await w.until(lambda: w.tally.acked == 10, "5 paid in audit-log and 5 refunds caught")
        published = w.of(Published)
        paid, refunds = set(ids(published, "paid")), set(ids(published, "refund"))
        refused = {f.message_id for f in w.of(PublishFailed) if f.refused}
        assert len(refused) == 3 and refused < paid  # shipping took 2 'paid', then was full
        assert w.tally.publish_refused == 3  # the tab counts them as nacked by the broker
        assert not w.of(Returned)  # the alternate exchange caught 'refund': nothing comes back
        got = lambda q: {a.message_id for a in w.of(Acked) if a.queue == q}  # noqa: E731
        assert got("caught") == refunds
        # a refused publish still reached the other queue, through the exchange-to-exchange binding
        assert got("audit-log") == paid
        await engine.refresh_depths()
        assert w.tally.depth["shipping"].ready == 2


async def test_higher_priority_messages_overtake_a_backlog(settings: Settings) -> None:
    scenario = Scenario(
        name="prio",
        title="prio",
        queues=(QueueSpec("tasks", max_priority=10),),
        producers=(
            ProducerSpec("bulk", "", rate=500, routing_keys=("tasks",), priority=(1,), count=20),
            ProducerSpec("urgent", "", rate=500, routing_keys=("tasks",), priority=(9,), count=5),
        ),
        consumers=(ConsumerGroupSpec("worker", "tasks", count=0, prefetch=1, work=WorkSpec("delay", 0)),),
    )
    async with running(scenario, settings) as (engine, w):
        await w.until(lambda: w.tally.confirmed == 25, "the backlog published and confirmed")
        await engine.groups["worker"].scale(1)  # the worker starts on a full queue
        await w.until(lambda: w.tally.acked == 25, "25 tasks done")
        order = [d.message_id for d in w.of(Delivered)]
        urgent = {p.message_id for p in w.of(Published) if p.producer == "urgent"}
        # all 25 waited in the queue before the worker came: the 5 urgent ones go first
        assert set(order[:5]) == urgent, order

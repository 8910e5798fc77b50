"""Per-message priorities, and the overtaking a priority queue does, as the engine observes them."""

from __future__ import annotations

import pytest

from broker_sim.domain.events import Delivered, Published
from broker_sim.domain.scenario import ConsumerGroupSpec, ProducerSpec, QueueSpec, Scenario, WorkSpec
from broker_sim.settings import Settings
from tests.support import running


def backlog(max_priority: int | None) -> Scenario:
    """One producer cycling priorities 1, 1, 1, 9 into 'tasks'; its worker starts later."""
    return Scenario(
        name="order",
        title="order",
        queues=(QueueSpec("tasks", max_priority=max_priority),),
        producers=(ProducerSpec("mixed", "", rate=0, routing_keys=("tasks",), priority=(1, 1, 1, 9)),),
        consumers=(ConsumerGroupSpec("worker", "tasks", count=0, prefetch=1, work=WorkSpec("delay", 0)),),
    )


@pytest.mark.parametrize(("max_priority", "overtook"), [(10, 5), (None, 0)], ids=["priority", "fifo"])
async def test_urgent_messages_overtake_a_backlog_only_in_a_priority_queue(
    settings: Settings, max_priority: int | None, overtook: int
) -> None:
    async with running(backlog(max_priority), settings) as (engine, w):
        await engine.burst("mixed", 20)  # returns once all 20 are confirmed: the backlog is there
        await engine.groups["worker"].scale(1)
        await w.until(lambda: w.tally.acked == 20, "20 tasks done")
        priority = {p.message_id: p.priority for p in w.of(Published)}
        assert list(priority.values()) == [1, 1, 1, 9] * 5  # each message carries its own
        first = [priority[d.message_id] for d in w.of(Delivered)][:5]
        assert first == ([9] * 5 if max_priority else [1, 1, 1, 9, 1])
        # every urgent task jumped the bulk ones published before it; a FIFO queue keeps publish order
        assert w.tally.order.overtook["tasks"] == overtook

"""Rejecting consumers, dead-letter retry through a wait queue, and the parking lot, on each broker."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from broker_sim.domain.events import Delivered, Nacked, Published
from broker_sim.domain.rejecting import job_bucket
from broker_sim.domain.scenario import (
    ConsumerGroupSpec,
    ProducerSpec,
    QueueSpec,
    RejectSpec,
    Scenario,
    WorkSpec,
)
from broker_sim.domain.scenario_file import load_scenario
from broker_sim.resources import builtin_scenarios_dir
from broker_sim.settings import Settings
from tests.support import running

RETRY = load_scenario(builtin_scenarios_dir() / "6-retry.toml")


def quick(scenario: Scenario, jobs: int) -> Scenario:
    """The retry story without its pauses: jobs at once, no work time, a short wait queue."""
    producer = replace(scenario.producers[0], rate=200, count=jobs)
    queues = tuple(replace(q, message_ttl_ms=200) if q.name == "wait" else q for q in scenario.queues)
    groups = tuple(replace(g, work=WorkSpec("delay", 0)) for g in scenario.consumers)
    return replace(scenario, producers=(producer,), queues=queues, consumers=groups, timeline=())


async def test_retry_parks_exactly_the_jobs_that_failed_every_try(settings: Settings) -> None:
    scenario = quick(RETRY, 40)
    reject = scenario.consumers[0].reject
    assert reject.tries == 3
    async with running(scenario, settings) as (_, w):
        published = lambda: {p.message_id for p in w.of(Published)}  # noqa: E731
        await w.until(lambda: len(published()) == 40, "40 jobs published")
        poison = {m for m in published() if job_bucket(m) < reject.share}
        flaky = {m for m in published() if reject.share <= job_bucket(m) < reject.share + reject.flaky}
        assert poison and flaky  # the story needs both kinds

        def settled() -> bool:
            acked = w.tally.acked_per_queue
            return acked["work"] == 40 - len(poison) and acked["parking-lot"] == len(poison)

        await w.until(settled, f"{40 - len(poison)} jobs done and {len(poison)} parked")
        parked = {d.message_id for d in w.of(Delivered) if d.queue == "parking-lot"}
        assert parked == poison
        failures = Counter(n.message_id for n in w.of(Nacked) if n.queue == "work")
        # a poison job is rejected twice (x-death counts 1, then 2) and parked on its 3rd try
        assert {m: failures[m] for m in poison} == dict.fromkeys(poison, 3)
        assert {m: failures[m] for m in flaky} == dict.fromkeys(flaky, 1)
        assert set(failures) == poison | flaky
        parking = [n for n in w.of(Nacked) if "parked" in n.reason]
        assert sorted(n.message_id for n in parking) == sorted(poison)


async def test_a_requeued_job_comes_back_redelivered_to_the_same_queue(settings: Settings) -> None:
    scenario = Scenario(
        name="requeue",
        title="requeue",
        queues=(QueueSpec("jobs"),),
        producers=(ProducerSpec("p", "", rate=200, routing_keys=("jobs",), count=5),),
        consumers=(ConsumerGroupSpec("w", "jobs", reject=RejectSpec(flaky=1.0, requeue=True)),),
    )
    async with running(scenario, settings) as (_, w):
        await w.until(lambda: w.tally.acked == 5, "5 jobs done on their second delivery")
        nacks = w.of(Nacked)
        assert len(nacks) == 5 and all(n.requeue for n in nacks)
        again = [d for d in w.of(Delivered) if d.redelivered]
        assert sorted(d.message_id for d in again) == sorted(n.message_id for n in nacks)

"""Purging a queue: the broker drops its ready messages, and the figures call them purged, not lost."""

from __future__ import annotations

import pytest

from broker_sim.domain.events import FlowEvent, Purged, QueueDepth
from broker_sim.domain.ledger import Ledger
from broker_sim.domain.report import build_report, format_report
from broker_sim.domain.scenario import ConsumerGroupSpec, ProducerSpec, QueueSpec, Scenario, WorkSpec
from broker_sim.settings import Settings
from broker_sim.sim import EngineError
from tests.support import running

SLOW = Scenario(
    name="purge",
    title="purge test",
    queues=(QueueSpec("jobs"),),
    producers=(ProducerSpec("server", "", rate=1, routing_keys=("jobs",)),),
    # one slow worker holds one job unacked while the rest wait: the purge takes only those
    consumers=(ConsumerGroupSpec("w", "jobs", count=1, prefetch=1, work=WorkSpec("delay", 1.0)),),
)


class WithoutPurges(Ledger):
    """A ledger deaf to purges: what the report would say if the engine kept quiet about them."""

    def __call__(self, event: FlowEvent) -> None:
        if not isinstance(event, Purged):
            super().__call__(event)


async def test_purge_drops_the_ready_messages_and_counts_them_purged_not_lost(settings: Settings) -> None:
    ledger, deaf = Ledger(), WithoutPurges()
    async with running(SLOW, settings, subscribers=(ledger, deaf)) as (engine, w):
        engine.pause()
        await engine.burst("server", 20)
        await w.until(lambda: w.tally.confirmed == w.tally.published, "every publish confirmed")
        await w.until(lambda: w.tally.routed["jobs"] == w.tally.published, "every message routed")
        await w.until(lambda: w.tally.delivered >= 1, "the worker holds a job")

        purged = await engine.purge("jobs")

        published = w.tally.published
        assert purged == w.of(Purged)[-1].messages == w.tally.purged
        assert 0 < purged <= published - 1, "the job in hand stays with its consumer"
        assert w.of(QueueDepth)[-1].ready == 0, "a fresh depth follows the purge"
        await w.until(lambda: w.tally.acked == w.tally.delivered, "the jobs in hand finished")
        await engine.refresh_depths()
        assert w.tally.delivered + purged == published, "nothing was delivered after the purge"

    report = build_report(SLOW, w.tally, ledger)
    assert (report.purged, report.lost) == (purged, 0)
    assert report.queues["jobs"].purged == purged
    assert f"purged {purged} (dropped on purpose, not lost)" in format_report("t", report)
    unaware = build_report(SLOW, w.tally, deaf)
    assert unaware.lost == purged, "without the Purged event the same messages would read as lost"


async def test_purge_refuses_a_queue_the_scenario_does_not_have(settings: Settings) -> None:
    async with running(SLOW, settings) as (engine, _w):
        with pytest.raises(EngineError, match=r"no queue 'nope' in purge test \(queues: jobs\)"):
            await engine.purge("nope")

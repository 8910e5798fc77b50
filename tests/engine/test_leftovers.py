"""A durable queue that still holds an earlier run's messages: said once, delivered like the rest."""

from __future__ import annotations

import io
import uuid

from broker_sim.domain.events import Acked, ConnectionChanged, Leftover, LinkState
from broker_sim.domain.scenario import ConsumerGroupSpec, QueueSpec, Scenario, WorkSpec
from broker_sim.headless import run_scenario
from broker_sim.settings import Settings
from tests.support import earlier_run_queue, running

JOBS = Scenario(
    name="left",
    title="leftovers",
    queues=(QueueSpec("jobs", durable=True),),
    consumers=(ConsumerGroupSpec("w", "jobs", count=1, prefetch=10, work=WorkSpec("delay", 0.001)),),
)


async def test_an_earlier_runs_messages_are_announced_once_and_processed(settings: Settings) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    async with (
        earlier_run_queue(settings.url, f"{prefix}left.jobs", 3),
        running(JOBS, settings, prefix=prefix) as (engine, w),
    ):
        await w.until(lambda: w.tally.acked >= 3, "the earlier run's three jobs processed")
        backs = len(w.of(ConnectionChanged))
        await engine.drop_connection()  # declared again on reconnect: no second announcement
        await w.until(
            lambda: any(e.state == LinkState.BACK for e in w.of(ConnectionChanged)[backs:]), "reconnected"
        )
        assert w.of(Leftover) == [Leftover("jobs", 3, engine.run_id)]
        assert sorted(a.message_id for a in w.of(Acked)) == [f"0ldrun00.server.{n}" for n in (1, 2, 3)]


async def test_a_headless_run_says_so_too(settings: Settings) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    err = io.StringIO()
    async with earlier_run_queue(settings.url, f"{prefix}left.jobs", 2):
        report = await run_scenario(JOBS, settings.with_(name_prefix=prefix), duration=2, speed=4, err=err)
    assert report is not None and report.acked == 2
    assert "note: jobs already held 2 messages from an earlier run; they are delivered too" in err.getvalue()

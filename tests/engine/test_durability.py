"""Restart the broker, lose nothing that was confirmed — on the embedded broker and a private RabbitMQ node.

Tests that restart a broker use private ones (never the shared RabbitMQ).
"""

from __future__ import annotations

import io
import time
import uuid
from collections import Counter
from pathlib import Path

import aio_pika
import pytest

from broker_sim.broker.handle import BrokerHandle
from broker_sim.domain.events import (
    Acked,
    BrokerRestarted,
    BrokerRestarting,
    Confirmed,
    ConnectionChanged,
    FlowEvent,
    LinkState,
    TracingChanged,
)
from broker_sim.domain.ledger import Ledger
from broker_sim.domain.report import build_report, format_report
from broker_sim.domain.scenario import ConsumerGroupSpec, ProducerSpec, QueueSpec, Scenario, WorkSpec
from broker_sim.domain.scenario_file import parse_scenario
from broker_sim.headless import run_scenario
from broker_sim.settings import Settings
from broker_sim.sim import Engine
from broker_sim.sim.durability import DurabilityLab, connect_plain
from tests.support import Watcher


# one restart per test: two restarts of a RabbitMQ node on a starved 2-core machine took longer
# than the suite's 120 s hang guard (a timeout, not a finding)
@pytest.mark.parametrize("crash", [False, True], ids=["restart", "crash"])
async def test_the_lab_counts_what_survived_a_restart(private_broker: BrokerHandle, crash: bool) -> None:
    lab = DurabilityLab(private_broker)
    result = await lab.run(200, crash=crash)
    rows = {r.queue.name: r for r in result.rows}
    persistent = rows["durable-persistent"]
    assert (persistent.confirmed, persistent.before, persistent.after, persistent.lost) == (
        200,
        200,
        200,
        0,
    ), f"crash={crash}: {persistent.missing}"
    assert "everything confirmed survived" in persistent.verdict()
    transient = rows["durable-transient"]
    assert (transient.before, transient.after, transient.queue_survived) == (200, 0, True), (
        f"crash={crash}: {transient.missing}"
    )
    assert "transient messages live in memory" in transient.verdict()
    gone = rows["transient-queue"]
    assert (gone.before, gone.after, gone.queue_survived) == (200, None, False)
    assert "non-durable queue is deleted" in gone.verdict()
    assert all(r.duplicated == 0 for r in result.rows)


async def test_a_durable_queue_missing_afterwards_is_reported_in_the_brokers_words(broker_url: str) -> None:
    lab = DurabilityLab(BrokerHandle(broker_url), prefix=f"lab-{uuid.uuid4().hex[:6]}.")
    try:
        rows = await lab.publish(20)
        conn = await connect_plain(broker_url)
        try:
            await (await conn.channel()).queue_delete(lab.prefix + "durable-transient")
        finally:
            await conn.close()
        await lab.count_after(rows)
    finally:
        await lab.cleanup()
    missing = {r.queue.name: r for r in rows}["durable-transient"]
    assert (missing.before, missing.after, missing.queue_survived) == (20, None, False)
    assert "no queue" in missing.missing
    assert "the durable queue is missing after the restart" in missing.verdict()
    assert "no queue" in missing.verdict()


async def test_the_lab_starts_clean_over_leftovers_and_a_clashing_queue(broker_url: str) -> None:
    lab = DurabilityLab(BrokerHandle(broker_url), prefix=f"lab-{uuid.uuid4().hex[:6]}.")
    conn = await connect_plain(broker_url)
    try:
        channel = await conn.channel()
        leftover = await channel.declare_queue(lab.prefix + "durable-persistent", durable=True)
        await channel.default_exchange.publish(aio_pika.Message(b"old"), leftover.name)
        # Same name, other durability: a plain declare would be refused with 406.
        await channel.declare_queue(lab.prefix + "durable-transient", durable=False)
        rows = await lab.publish(30)
    finally:
        await conn.close()
        await lab.cleanup()
    assert [(r.queue.name, r.confirmed, r.before) for r in rows] == [
        ("durable-persistent", 30, 30),
        ("durable-transient", 30, 30),
        ("transient-queue", 30, 30),
    ]


STEADY = Scenario(
    name="steady",
    title="steady load",
    queues=(QueueSpec("jobs", durable=True),),
    producers=(ProducerSpec("server", "", rate=150, routing_keys=("jobs",), persistent=True),),
    consumers=(ConsumerGroupSpec("w", "jobs", count=2, prefetch=20, work=WorkSpec("delay", 0.001)),),
)


class Fates:
    """The sets a durability claim is checked against: ids confirmed, and how often each was acked.

    Kept up to date event by event, so waiting on "every confirmed id acked" costs nothing.
    """

    def __init__(self) -> None:
        self.confirmed: set[str] = set()
        self.acks: Counter[str] = Counter()
        self.missing: set[str] = set()
        """Confirmed ids not acked (yet)."""

    def __call__(self, event: FlowEvent) -> None:
        if isinstance(event, Confirmed):
            self.confirmed.add(event.message_id)
            if not self.acks[event.message_id]:
                self.missing.add(event.message_id)
        elif isinstance(event, Acked):
            self.acks[event.message_id] += 1
            self.missing.discard(event.message_id)

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self.acks.values() if n > 1)


async def test_ten_restarts_under_load_lose_no_confirmed_message(
    private_broker: BrokerHandle, tmp_path: Path
) -> None:
    engine = Engine(
        STEADY,
        Settings(url=private_broker.url, data_dir=tmp_path),
        broker=private_broker,
        remove_durable=True,
    )
    w, ledger, fates = Watcher(engine.bus), Ledger(), Fates()
    engine.bus.subscribe(ledger)
    engine.bus.subscribe(fates)
    await engine.start()
    back_after: list[float] = []
    try:
        await engine.ready()
        await w.until(lambda: w.tally.acked >= 100, "traffic before the first restart")
        for i in range(10):
            crash = i % 2 == 1
            started = time.monotonic()
            acked = w.tally.acked
            backs = sum(1 for e in w.of(ConnectionChanged) if e.state == LinkState.BACK)
            await engine.restart_broker(crash=crash)
            await w.until(
                lambda b=backs: sum(1 for e in w.of(ConnectionChanged) if e.state == LinkState.BACK) > b,
                f"reconnected after restart {i + 1}",
                timeout=60,
            )
            await w.until(
                lambda a=acked: w.tally.acked >= a + 100, f"traffic after restart {i + 1}", timeout=60
            )
            back_after.append(time.monotonic() - started)
        engine.pause()
        await w.until(lambda: not fates.missing, "every confirmed message acked", timeout=60)
        await engine.refresh_depths()
        report = build_report(STEADY, w.tally, ledger)
    finally:
        await engine.stop()
    crashes = sum(1 for e in w.of(BrokerRestarting) if e.crash)
    print(
        f"\n{private_broker.kind}: 10 restarts ({crashes} kill -9): published {w.tally.published} "
        f"(+{w.tally.republished} republished), confirmed {len(fates.confirmed)}, "
        f"confirmed and never acked {len(fates.missing)}; ledger: lost {report.lost}, "
        f"routing unknown {report.routing_unknown}, duplicates {report.duplicates} "
        f"(by the ack sets {fates.duplicates}); restart→traffic "
        f"median {sorted(back_after)[5]:.2f} s, max {max(back_after):.2f} s"
    )
    assert len(w.of(BrokerRestarted)) == 10 and crashes == 5
    # A restarted RabbitMQ node forgets its tracing flag: broker-sim turned it on again each time.
    assert [e.traced for e in w.of(TracingChanged)] == [True] * 11
    assert len(fates.confirmed) > 1000
    assert fates.missing == set()  # the set of confirmed ids is inside the set of acked ids
    assert report.lost == 0  # and the ledger's own verdict agrees
    assert report.routing_unknown == 0  # every confirmed message's queues were told by a trace
    assert report.duplicates == fates.duplicates


CRASH_STORY = """
name = "crash.story"
title = "A crash in the timeline"
duration = 15

[[queues]]
name = "jobs"
durable = true

[[producers]]
name = "server"
exchange = ""
routing_keys = ["jobs"]
rate = 100
persistent = true

[[consumers]]
name = "w"
queue = "jobs"
prefetch = 20

[[timeline]]
at = 1.5
action = "restart-broker"
crash = true

[[expect]]
metric = "lost"
equals = 0
"""


async def test_a_headless_run_proves_durability_across_a_kill_minus_9_in_its_timeline(
    private_broker: BrokerHandle, tmp_path: Path
) -> None:
    scenario = parse_scenario(CRASH_STORY)
    assert scenario.timeline[0].crash
    err = io.StringIO()
    settings = Settings(url=private_broker.url, data_dir=tmp_path)
    report = await run_scenario(scenario, settings, broker=private_broker, err=err)
    assert report is not None, err.getvalue()
    assert "t=1.5s kill -9 the broker and start it again" in err.getvalue()
    assert "[back]" in err.getvalue()  # the connection went away with the broker and came back
    assert report.confirmed > 100
    assert report.lost == 0 and report.passed, format_report(scenario.title, report)

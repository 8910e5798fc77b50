"""Restart the broker, lose nothing that was confirmed — on the embedded broker and a private RabbitMQ node.

These tests restart brokers, so they use private ones (never the shared RabbitMQ).
"""

from __future__ import annotations

import time
from pathlib import Path

from broker_sim.broker.handle import BrokerHandle, EmbeddedHandle, LocalNodeHandle
from broker_sim.domain.events import Acked, BrokerRestarted, ConnectionChanged, LinkState, TracingChanged
from broker_sim.domain.ledger import Ledger
from broker_sim.domain.scenario import ConsumerGroupSpec, ProducerSpec, QueueSpec, Scenario, WorkSpec
from broker_sim.settings import Settings
from broker_sim.sim import Engine
from broker_sim.sim.durability import DurabilityLab
from tests.support import Watcher


async def test_the_lab_counts_what_survived_a_restart(private_broker: BrokerHandle) -> None:
    lab = DurabilityLab(private_broker)
    for crash in (False, True):
        result = await lab.run(200, crash=crash)
        rows = {r.queue.name: r for r in result.rows}
        persistent = rows["durable-persistent"]
        assert (persistent.confirmed, persistent.before, persistent.after, persistent.lost) == (
            200,
            200,
            200,
            0,
        )
        assert "everything confirmed survived" in persistent.verdict()
        transient = rows["durable-transient"]
        assert (transient.before, transient.after, transient.queue_survived) == (200, 0, True)
        assert "transient messages live in memory" in transient.verdict()
        gone = rows["transient-queue"]
        assert (gone.before, gone.after, gone.queue_survived) == (200, None, False)
        assert "non-durable queue is deleted" in gone.verdict()
        assert all(r.duplicated == 0 for r in result.rows)


STEADY = Scenario(
    name="steady",
    title="steady load",
    queues=(QueueSpec("jobs", durable=True),),
    producers=(ProducerSpec("server", "", rate=150, routing_keys=("jobs",), persistent=True),),
    consumers=(ConsumerGroupSpec("w", "jobs", count=2, prefetch=20, work=WorkSpec("delay", 0.001)),),
)


async def test_ten_restarts_under_load_lose_no_confirmed_message(
    private_broker: BrokerHandle, tmp_path: Path
) -> None:
    engine = Engine(
        STEADY,
        Settings(url=private_broker.url, data_dir=tmp_path),
        broker=private_broker,
        remove_durable=True,
    )
    w, ledger = Watcher(engine.bus), Ledger()
    engine.bus.subscribe(ledger)
    await engine.start()
    back_after: list[float] = []
    try:
        await engine.ready()
        await w.until(lambda: w.tally.acked >= 100, "traffic before the first restart")
        for i in range(10):
            crash = i % 2 == 1 and isinstance(private_broker, EmbeddedHandle | LocalNodeHandle)
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
        await w.until(lambda: ledger.unsettled("jobs") == 0, "every confirmed message processed", timeout=60)
    finally:
        await engine.stop()
    confirmed = w.tally.confirmed
    lost = ledger.unsettled("jobs")
    duplicates = ledger.duplicates["jobs"]
    print(
        f"\n{private_broker.kind}: published {w.tally.published} (+{w.tally.republished} republished), "
        f"confirmed {confirmed}, lost {lost}, duplicates {duplicates}, restart→traffic "
        f"median {sorted(back_after)[5]:.2f} s, max {max(back_after):.2f} s"
    )
    assert len(w.of(BrokerRestarted)) == 10
    # A restarted RabbitMQ node forgets its tracing flag: broker-sim turned it on again each time.
    assert [e.traced for e in w.of(TracingChanged)] == [True] * 11
    assert confirmed > 1000
    assert lost == 0
    assert any(a.message_id for a in w.of(Acked))

"""After a restart every engine on that broker reconnects at once — not only the one that did it.

The backoff between attempts is made an hour long here: an engine that comes back can only have
been woken by the restart, not by its backoff running out.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from broker_sim.broker.handle import BrokerHandle
from broker_sim.domain.events import ConnectionChanged, LinkState
from broker_sim.domain.scenario import ConsumerGroupSpec, ProducerSpec, QueueSpec, Scenario
from broker_sim.settings import Settings
from broker_sim.sim import Engine, link
from broker_sim.sim.durability import DurabilityLab
from tests.support import DEADLINE, Watcher

TAB = Scenario(
    name="tab",
    title="a tab",
    queues=(QueueSpec("q"),),
    producers=(ProducerSpec("p", "", rate=5, routing_keys=("q",)),),
    consumers=(ConsumerGroupSpec("c", "q"),),
)


def backs(w: Watcher) -> int:
    return sum(1 for e in w.of(ConnectionChanged) if e.state == LinkState.BACK)


@pytest.mark.parametrize("who", ["another tab", "the durability lab"])
async def test_every_engine_on_the_broker_reconnects_at_once_after_a_restart(
    private_broker: BrokerHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, who: str
) -> None:
    monkeypatch.setattr(link, "RETRY_FIRST", 3600.0)
    monkeypatch.setattr(link, "RETRY_MAX", 3600.0)
    settings = Settings(url=private_broker.url, url_source="test", data_dir=tmp_path)
    engines = [
        Engine(TAB, settings, broker=private_broker, prefix=f"t{uuid.uuid4().hex[:8]}.", remove_durable=True)
        for _ in range(2)
    ]
    watchers = [Watcher(e.bus) for e in engines]
    for engine in engines:
        await engine.start()
    try:
        for engine in engines:
            await asyncio.wait_for(engine.ready(), DEADLINE)
        if who == "another tab":
            await engines[0].restart_broker()
        else:
            await DurabilityLab(private_broker, prefix=f"lab-{uuid.uuid4().hex[:6]}.").run(5)
        for i, w in enumerate(watchers):
            await w.until(lambda w=w: backs(w) == 1, f"engine {i + 1} back after the restart", timeout=60)
    finally:
        for engine in engines:
            await engine.stop()

"""Does the engine's memory stay flat as messages flow? RSS after 10k messages vs after N.

    uv run python benchmarks/memory_flat.py [--messages 300000] [--url URL]

Runs one scenario (a producer at full speed, one consumer, tracing on where the broker allows)
with the subscribers the TUI and the headless report use (Tally, Ledger), and prints the
process's resident memory at checkpoints. Not part of the test run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
from pathlib import Path

from broker_sim.domain.ledger import Ledger
from broker_sim.domain.scenario import (
    BindingSpec,
    ConsumerGroupSpec,
    ExchangeSpec,
    ProducerSpec,
    QueueSpec,
    Scenario,
    WorkSpec,
)
from broker_sim.domain.tally import Tally
from broker_sim.settings import Settings
from broker_sim.sim import Engine


def rss_mb() -> float:
    """Resident set size of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def main(messages: int, url: str) -> None:
    scenario = Scenario(
        name="memory",
        title="memory",
        exchanges=(ExchangeSpec("x", "direct"),),
        queues=(QueueSpec("q"),),
        bindings=(BindingSpec("x", "q", "k"),),
        producers=(ProducerSpec("p", "x", rate=1e9, routing_keys=("k",), count=messages),),
        consumers=(ConsumerGroupSpec("c", "q", prefetch=100, work=WorkSpec("delay", 0)),),
    )
    settings = Settings(url=url, data_dir=Path(tempfile.mkdtemp()))
    engine = Engine(scenario, settings, prefix=f"bench-mem-{int(time.time())}.", remove_durable=True)
    tally, ledger = Tally(), Ledger()
    engine.bus.subscribe(tally)
    engine.bus.subscribe(ledger)
    await engine.start()
    await engine.ready()
    checkpoints = [
        10_000,
        *(c for c in (50_000, 100_000, 200_000, 500_000, 1_000_000) if c < messages),
        messages,
    ]
    baseline = None
    started = time.monotonic()
    for mark in checkpoints:
        while tally.acked < mark:  # noqa: ASYNC110 - a benchmark polling its own counter
            await asyncio.sleep(0.2)
        gc.collect()
        now = rss_mb()
        baseline = baseline if baseline is not None else now
        print(
            f"{mark:>9,} acked  RSS {now:7.1f} MB  (+{now - baseline:5.1f} MB since 10k)  "
            f"ledger open {len(ledger.open):,}  {tally.acked / (time.monotonic() - started):,.0f} msg/s",
            flush=True,
        )
    await engine.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300_000)
    parser.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672/")
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.url))

"""Publisher confirms three ways: one at a time, in windows, async with a bound; on each broker."""

from __future__ import annotations

from dataclasses import replace

import pytest

from broker_sim.domain.events import Confirmed, Published
from broker_sim.domain.scenario import ConfirmMode, ConsumerGroupSpec, ProducerSpec, QueueSpec, Scenario
from broker_sim.settings import Settings
from tests.support import Watcher, running

BURST = 120


def confirming(mode: ConfirmMode, window: int | None) -> Scenario:
    return Scenario(
        name="confirms",
        title="confirms",
        queues=(QueueSpec("orders"),),
        producers=(ProducerSpec("p", "", rate=0, routing_keys=("orders",), confirm=mode, window=window),),
        consumers=(ConsumerGroupSpec("packer", "orders", prefetch=200),),
    )


def windows_overlap(w: Watcher) -> bool:
    """True when a publish went out while an earlier window was partly confirmed."""
    outstanding, last = 0, None
    for event in w.events:
        if isinstance(event, Published):
            if outstanding and not isinstance(last, Published):
                return True
            outstanding += 1
        elif isinstance(event, Confirmed):
            outstanding -= 1
        else:
            continue
        last = event
    return False


@pytest.mark.parametrize(
    ("mode", "window", "most"),
    [("single", None, 1), ("window", 25, 25), ("async", 40, 40)],
    ids=["one at a time", "windows of 25", "async, at most 40"],
)
async def test_a_burst_waits_for_confirms_the_producers_way(
    settings: Settings, mode: ConfirmMode, window: int | None, most: int
) -> None:
    async with running(confirming(mode, window), settings) as (engine, w):
        await engine.burst("p", BURST)  # returns once every publish is answered
        figures = w.tally.producers["p"]
        assert (figures.published, figures.confirmed, figures.outstanding) == (BURST, BURST, 0)
        # a burst fills the window at once: never more awaiting a confirm, and never fewer at the peak
        assert figures.max_outstanding == most
        if mode == "window":
            assert not windows_overlap(w)  # the next window waits until the last is all confirmed
        await w.until(lambda: w.tally.acked == BURST, "every order packed")


async def test_windows_go_out_whole_and_never_overlap_even_beside_a_burst(settings: Settings) -> None:
    paced = ProducerSpec("p", "", rate=500, routing_keys=("orders",), confirm="window", window=30, count=100)
    async with running(replace(confirming("window", 30), producers=(paced,)), settings) as (engine, w):
        await engine.burst("p", 45)  # while the pacing sends its own windows
        await w.until(lambda: w.tally.producers["p"].confirmed == 145, "100 paced and 45 burst confirmed")
        assert w.tally.producers["p"].max_outstanding == 30
        assert not windows_overlap(w)


async def test_async_confirms_keep_the_bound_while_publishing_at_a_rate(settings: Settings) -> None:
    fast = ProducerSpec("p", "", rate=2000, routing_keys=("orders",), confirm="async", window=8, count=400)
    async with running(replace(confirming("async", 8), producers=(fast,)), settings) as (_, w):
        await w.until(lambda: w.tally.producers["p"].confirmed == 400, "400 confirmed")
        assert 1 < w.tally.producers["p"].max_outstanding <= 8

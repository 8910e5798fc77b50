"""Running the app in a test: one tab shown, its engine watched, everything stopped after."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from textual.pilot import Pilot
from textual.widgets import TabbedContent

from broker_sim.broker.handle import BrokerHandle
from broker_sim.settings import Settings
from broker_sim.sim import EventBus
from broker_sim.tui.app import BrokerSimApp, make_app
from broker_sim.tui.pattern_tab import PatternTab
from tests.support import Watcher

SIZE = (160, 44)


@asynccontextmanager
async def app_on(
    settings: Settings,
    name: str = "work-queue",
    broker: BrokerHandle | None = None,
    prefix: str | None = None,
) -> AsyncIterator[tuple[BrokerSimApp, PatternTab, Watcher, Pilot[None]]]:
    """The app on one tab, its engines watched; engines (and a broker it started) stopped after.

    Names on the broker start with ``prefix`` (a fresh one by default).
    """
    app = make_app(settings.with_(name_prefix=prefix or f"t{uuid.uuid4().hex[:8]}."), broker=broker)
    tab = next(t for t in app.tabs if t.scenario.name == name)
    bus = EventBus()
    watcher = Watcher(bus)
    tab.controller.observers.append(bus.emit)
    async with app.run_test(size=SIZE) as pilot:
        app.query_one(TabbedContent).active = f"pane-{name}"
        await pilot.pause()
        try:
            yield app, tab, watcher, pilot
        finally:
            await app.stop_engines()
            await app.close_broker()


async def until_screen(
    pilot: Pilot[None], predicate: Callable[[], bool], what: str, rounds: int = 200, at_least: float = 10.0
) -> None:
    """Let the app process its messages until the screen shows something (bounded, no sleep).

    Bounded by ``rounds`` and by ``at_least`` seconds, whichever ends later: figures are redrawn on
    a timer, and on a fast machine 200 rounds can pass between two of its ticks.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + at_least
    done = 0
    while done < rounds or loop.time() < deadline:
        await pilot.pause()
        done += 1
        if predicate():
            return
    raise AssertionError(f"the screen never showed: {what}")


async def start_work_done(pilot: Pilot[None]) -> None:
    """Until the app's work after the first frame is done: every tab mounted (the hidden ones
    follow the first frame), the pictures ordered by igraph (imported in a thread).

    A snapshot taken while that work still runs can catch the screen between two layouts (a
    log's deferred scroll to its end not yet applied): snapshots start from here."""
    app = pilot.app
    assert isinstance(app, BrokerSimApp)
    await until_screen(
        pilot,
        lambda: app.warmed_up and all(t.is_mounted for t in app.tabs) and app.durability.is_mounted,
        "every tab mounted, the pictures ordered",
    )
    await pilot.pause()
